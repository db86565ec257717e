"""Producer agent that publishes messages to Redis."""
from isolated_agents_sdk import run_agent, Policy, NetworkPolicy
from pathlib import Path
import os

def producer_agent():
    """Publish messages to Redis channel."""
    import redis
    import json
    import time
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

    # Publish messages
    channel = "agent-events"
    messages_sent = 0

    for i in range(10):
        message = {
            "id": i,
            "type": "task",
            "data": f"Process item {i}",
            "timestamp": time.time()
        }

        # Publish to channel
        r.publish(channel, json.dumps(message))
        messages_sent += 1
        print(f"Published message {i} to {channel}")

        time.sleep(1)

    # Save summary
    (output_dir / "summary.txt").write_text(
        f"Published {messages_sent} messages to {channel}"
    )

if __name__ == "__main__":
    result = run_agent(
        agent=producer_agent,
        working_dir="./workspace",
        host_output_path="./output",
        policy=Policy(
            network=NetworkPolicy(
                disabled=False,
                allowed_endpoints=["localhost:6379"]
            ),
            allowed_env_vars=["REDIS_HOST", "REDIS_PORT", "REDIS_PASSWORD"],
            pip_packages=["redis"],
        )
    )

    print(f"Producer completed: {result.exit_code}")
