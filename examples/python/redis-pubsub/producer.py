"""Producer agent that publishes messages to Redis (Example 1 of the Python SDK's page, under airlock).

It connects with redis-py to the Redis the policy allows (REDIS_URL carries this run's own ACL user),
publishes 10 events to the channel once the consumer has subscribed (run.yaml: waitFor), and saves a
summary in /output. The events have the shape the TypeScript consumer checks (../../redis-pubsub)."""
import json
import os
import time
from pathlib import Path

import redis

import airlock


@airlock.agent
def producer_agent(ctx: airlock.Context):
    r = redis.Redis.from_url(os.environ["REDIS_URL"], decode_responses=True)
    output_dir = Path("/output")

    # One channel per `airlock up`, so parallel runs on the same Redis do not hear each other.
    channel = f"agent-events:{os.environ.get('AIRLOCK_GROUP_RUN_ID', 'default')}"
    messages_sent = 0
    delivered = 0
    for i in range(10):
        message = {"id": i, "type": "task", "data": f"Process item {i}", "timestamp": time.time() * 1000}
        delivered += r.publish(channel, json.dumps(message))
        messages_sent += 1
        print(f"Published message {i} to {channel}")
        time.sleep(0.05)

    (output_dir / "summary.txt").write_text(f"Published {messages_sent} messages to {channel} ({delivered} deliveries)\n")
    return {"published": messages_sent, "delivered": delivered}
