"""Request agent: sends requests over Redis and waits for each reply (Example 4 of the Python SDK's page, under airlock)."""
import json
import os
import uuid
from pathlib import Path

import redis

import airlock


@airlock.agent
def request_agent(ctx: airlock.Context):
    r = redis.Redis.from_url(os.environ["REDIS_URL"], decode_responses=True)
    prefix = f"calc:{os.environ.get('AIRLOCK_GROUP_RUN_ID', 'default')}"
    output_dir = Path("/output")

    results = []
    for i in range(1, 6):
        request_id = str(uuid.uuid4())
        request = {"id": request_id, "method": "calculate", "params": {"x": i * 10, "y": 20}}
        r.lpush(f"{prefix}:requests", json.dumps(request))
        print(f"Sent request {request_id}")

        reply = r.brpop(f"{prefix}:reply:{request_id}", timeout=30)
        if not reply:
            raise TimeoutError(f"no reply to request {request_id} within 30 s")
        result = json.loads(reply[1])
        print(f"{request['params']['x']} + {request['params']['y']} = {result['result']}")
        results.append({**request["params"], "result": result["result"]})

    (output_dir / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    return {"replies": len(results)}
