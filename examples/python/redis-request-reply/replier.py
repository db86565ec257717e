"""Reply agent: answers 5 requests over Redis, then stops (Example 4 of the Python SDK's page, under airlock)."""
import json
import os
from pathlib import Path

import redis

import airlock


@airlock.agent
def reply_agent(ctx: airlock.Context):
    r = redis.Redis.from_url(os.environ["REDIS_URL"], decode_responses=True)
    prefix = f"calc:{os.environ.get('AIRLOCK_GROUP_RUN_ID', 'default')}"
    output_dir = Path("/output")
    print(f"Serving {prefix}:requests")
    airlock.ready()

    requests_processed = 0
    while requests_processed < 5:
        request_data = r.brpop(f"{prefix}:requests", timeout=30)
        if not request_data:
            break
        request = json.loads(request_data[1])
        print(f"Processing request {request['id']}")
        result = request["params"]["x"] + request["params"]["y"]
        reply_key = f"{prefix}:reply:{request['id']}"
        r.lpush(reply_key, json.dumps({"id": request["id"], "result": result}))
        r.expire(reply_key, 60)  # expire after 1 minute
        requests_processed += 1

    (output_dir / "summary.txt").write_text(f"Processed {requests_processed} requests\n")
    return {"served": requests_processed}
