"""Producer agent that streams events to Kafka (Example 3 of the Python SDK's page, under airlock).

kafka-python connects to the broker the policy allows; under bus rights KAFKA_USERNAME and
KAFKA_PASSWORD are this run's own SCRAM user, which may create and write only its own topic."""
import json
import os
import time
from pathlib import Path

from kafka import KafkaProducer

import airlock
from kafka_common import ensure_topic, kafka_settings


@airlock.agent
def kafka_producer(ctx: airlock.Context):
    topic = f"agent-events-{os.environ.get('AIRLOCK_GROUP_RUN_ID', 'default')}"
    ensure_topic(topic)

    producer = KafkaProducer(**kafka_settings(), acks="all", value_serializer=lambda v: json.dumps(v).encode("utf-8"))
    output_dir = Path("/output")
    events_sent = 0
    for i in range(100):
        event = {"id": i, "type": "sensor_reading", "value": i * 1.5, "timestamp": time.time()}
        producer.send(topic, value=event).get(timeout=10)  # wait for confirmation
        events_sent += 1
        if (i + 1) % 10 == 0:
            print(f"Sent {i + 1} events")
    producer.flush()
    producer.close()

    (output_dir / "summary.txt").write_text(f"Sent {events_sent} events to {topic}\n")
    return {"sent": events_sent}
