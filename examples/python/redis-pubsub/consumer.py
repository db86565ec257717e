"""Consumer agent that subscribes to a Redis channel (Example 1 of the Python SDK's page, under airlock).

It subscribes first, tells the runner it is ready (the producer starts then), receives the 10 events
and saves them in /output."""
import json
import os
from pathlib import Path

import redis

import airlock


@airlock.agent
def consumer_agent(ctx: airlock.Context):
    r = redis.Redis.from_url(os.environ["REDIS_URL"], decode_responses=True)
    output_dir = Path("/output")

    pubsub = r.pubsub()
    channel = f"agent-events:{os.environ.get('AIRLOCK_GROUP_RUN_ID', 'default')}"
    pubsub.subscribe(channel)
    pubsub.get_message(timeout=5)  # the server's confirmation: subscribed from here on
    print(f"Subscribed to {channel}, waiting for messages...")
    airlock.ready()

    results = []
    for message in pubsub.listen():
        if message["type"] == "message":
            data = json.loads(message["data"])
            results.append(f"Processed: {data['data']}")
            print(f"Received message {data['id']}: {data['data']}")
            if len(results) >= 10:
                break

    (output_dir / "results.txt").write_text("\n".join(results) + "\n")
    (output_dir / "summary.txt").write_text(f"Received {len(results)} messages from {channel}\n")
    return {"received": len(results)}
