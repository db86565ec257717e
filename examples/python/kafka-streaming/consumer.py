"""Consumer agent that processes Kafka events (Example 3 of the Python SDK's page, under airlock).

It reads the producer's 100 events from the earliest offset in a consumer group (which its policy
names), and may start before or after the producer."""
import json
import os
from pathlib import Path

from kafka import KafkaConsumer

import airlock
from kafka_common import ensure_topic, kafka_settings


@airlock.agent
def kafka_consumer(ctx: airlock.Context):
    run = os.environ.get("AIRLOCK_GROUP_RUN_ID", "default")
    topic = f"agent-events-{run}"
    ensure_topic(topic)
    consumer = KafkaConsumer(
        topic,
        **kafka_settings(),
        value_deserializer=lambda m: json.loads(m.decode("utf-8")),
        group_id=f"agent-group-{run}",
        auto_offset_reset="earliest",
        consumer_timeout_ms=60_000,  # give up if the producer never comes
    )
    output_dir = Path("/output")

    results = []
    for message in consumer:
        event = message.value
        results.append(f"Processed event {event['id']}: value={event['value']}")
        if len(results) % 10 == 0:
            print(f"Processed {len(results)} events")
        if len(results) >= 100:
            break
    consumer.close()

    (output_dir / "results.txt").write_text("\n".join(results) + "\n")
    (output_dir / "summary.txt").write_text(f"Processed {len(results)} events\n")
    return {"processed": len(results)}
