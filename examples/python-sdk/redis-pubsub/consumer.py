"""Consumer agent that subscribes to Redis channel."""
from isolated_agents_sdk import run_agent, Policy, NetworkPolicy
from pathlib import Path
import os

def consumer_agent():
    """Subscribe to Redis channel and process messages."""
    import redis
    import json
    from pathlib import Path

    # Connect to Redis
    r = redis.Redis(
        host=os.environ.get("REDIS_HOST", "localhost"),
        port=int(os.environ.get("REDIS_PORT", "6379")),
        password=os.environ.get("REDIS_PASSWORD"),
        decode_responses=True
    )

    output_dir = Path("/output")
    output_dir.mkdir(parents=True, exist_ok=True)

    # Subscribe to channel
    pubsub = r.pubsub()
    channel = "agent-events"
    pubsub.subscribe(channel)

    print(f"Subscribed to {channel}, waiting for messages...")

    messages_received = 0
    results = []

    # Listen for messages (with timeout)
    for message in pubsub.listen():
        if message['type'] == 'message':
            data = json.loads(message['data'])

            # Process message
            result = f"Processed: {data['data']}"
            results.append(result)
            messages_received += 1

            print(f"Received message {data['id']}: {data['data']}")

            # Stop after 10 messages
            if messages_received >= 10:
                break

    # Save results
    (output_dir / "results.txt").write_text("\n".join(results))
    (output_dir / "summary.txt").write_text(
        f"Received {messages_received} messages from {channel}"
    )

if __name__ == "__main__":
    result = run_agent(
        agent=consumer_agent,
        working_dir="./workspace",
        host_output_path="./output",
        policy=Policy(
            network=NetworkPolicy(
                disabled=False,
                allowed_endpoints=["localhost:6379"]
            ),
            allowed_env_vars=["REDIS_HOST", "REDIS_PORT", "REDIS_PASSWORD"],
            pip_packages=["redis"],
            timeout_seconds=60,  # Timeout after 1 minute
        )
    )

    print(f"Consumer completed: {result.exit_code}")
