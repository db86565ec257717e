"""Request/Reply pattern using Redis."""
from isolated_agents_sdk import run_agent, Policy, NetworkPolicy
import os

def request_agent():
    """Send request and wait for reply."""
    import redis
    import json
    import uuid
    from pathlib import Path

    r = redis.Redis(
        host=os.environ.get("REDIS_HOST", "localhost"),
        decode_responses=True
    )

    output_dir = Path("/output")
    output_dir.mkdir(parents=True, exist_ok=True)

    # Create request
    request_id = str(uuid.uuid4())
    request = {
        "id": request_id,
        "method": "calculate",
        "params": {"x": 10, "y": 20}
    }

    # Send request
    r.lpush("requests", json.dumps(request))
    print(f"Sent request {request_id}")

    # Wait for reply
    reply_key = f"reply:{request_id}"
    reply = r.brpop(reply_key, timeout=30)

    if reply:
        result = json.loads(reply[1])
        print(f"Received reply: {result}")

        (output_dir / "result.txt").write_text(
            f"Result: {result['result']}"
        )
    else:
        print("Timeout waiting for reply")

def reply_agent():
    """Process requests and send replies."""
    import redis
    import json
    from pathlib import Path

    r = redis.Redis(
        host=os.environ.get("REDIS_HOST", "localhost"),
        decode_responses=True
    )

    output_dir = Path("/output")
    output_dir.mkdir(parents=True, exist_ok=True)

    requests_processed = 0

    # Process requests
    while requests_processed < 5:
        # Wait for request
        request_data = r.brpop("requests", timeout=30)

        if not request_data:
            break

        request = json.loads(request_data[1])
        print(f"Processing request {request['id']}")

        # Calculate result
        result = request['params']['x'] + request['params']['y']

        # Send reply
        reply = {
            "id": request['id'],
            "result": result
        }

        reply_key = f"reply:{request['id']}"
        r.lpush(reply_key, json.dumps(reply))
        r.expire(reply_key, 60)  # Expire after 1 minute

        requests_processed += 1

    (output_dir / "summary.txt").write_text(
        f"Processed {requests_processed} requests"
    )
