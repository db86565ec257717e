"""Consumer agent that processes Kafka events."""
from isolated_agents_sdk import run_agent, Policy, NetworkPolicy
import os

def kafka_consumer():
    """Consume and process events from Kafka."""
    from kafka import KafkaConsumer
    import json
    from pathlib import Path

    # Create Kafka consumer
    consumer = KafkaConsumer(
        "agent-events",
        bootstrap_servers=os.environ["KAFKA_BROKERS"].split(","),
        value_deserializer=lambda m: json.loads(m.decode('utf-8')),
        group_id="agent-group",
        auto_offset_reset='earliest'
    )

    output_dir = Path("/output")
    output_dir.mkdir(parents=True, exist_ok=True)

    events_processed = 0
    results = []

    # Process events
    for message in consumer:
        event = message.value

        # Process event
        result = f"Processed event {event['id']}: value={event['value']}"
        results.append(result)
        events_processed += 1

        if events_processed % 10 == 0:
            print(f"Processed {events_processed} events")

        # Stop after 100 events
        if events_processed >= 100:
            break

    consumer.close()

    # Save results
    (output_dir / "results.txt").write_text("\n".join(results))
    (output_dir / "summary.txt").write_text(
        f"Processed {events_processed} events"
    )

if __name__ == "__main__":
    result = run_agent(
        agent=kafka_consumer,
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
            timeout_seconds=300,
        )
    )

    print(f"Consumer completed: {result.exit_code}")
