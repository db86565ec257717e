"""Producer agent that streams events to Kafka."""
from isolated_agents_sdk import run_agent, Policy, NetworkPolicy
import os

def kafka_producer():
    """Stream events to Kafka topic."""
    from kafka import KafkaProducer
    import json
    from pathlib import Path
    import time

    # Create Kafka producer
    producer = KafkaProducer(
        bootstrap_servers=os.environ["KAFKA_BROKERS"].split(","),
        value_serializer=lambda v: json.dumps(v).encode('utf-8')
    )

    output_dir = Path("/output")
    output_dir.mkdir(parents=True, exist_ok=True)

    topic = "agent-events"
    events_sent = 0

    # Stream events
    for i in range(100):
        event = {
            "id": i,
            "type": "sensor_reading",
            "value": i * 1.5,
            "timestamp": time.time()
        }

        # Send to Kafka
        future = producer.send(topic, value=event)
        future.get(timeout=10)  # Wait for confirmation

        events_sent += 1

        if (i + 1) % 10 == 0:
            print(f"Sent {i + 1} events")

        time.sleep(0.1)

    producer.flush()
    producer.close()

    # Save summary
    (output_dir / "summary.txt").write_text(
        f"Sent {events_sent} events to {topic}"
    )

if __name__ == "__main__":
    result = run_agent(
        agent=kafka_producer,
        working_dir="./workspace",
        host_output_path="./output",
        policy=Policy(
            network=NetworkPolicy(
                disabled=False,
                allowed_endpoints=[
                    "localhost:9092",
                    "localhost:9092",
                ]
            ),
            allowed_env_vars=["KAFKA_BROKERS"],
            pip_packages=["kafka-python"],
        )
    )

    print(f"Producer completed: {result.exit_code}")
