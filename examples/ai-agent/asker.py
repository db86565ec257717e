"""The AI agent in Python: asks the model with `requests` (all at once) and with `httpx` (streamed,
token by token), unmodified clients with their default trust, and publishes the answer with
redis-py. It holds no API key: the gate adds it as the request leaves (asker-python.yaml)."""
import json
import os

import httpx
import redis
import requests

import airlock

API = os.environ.get("MODEL_API_URL", "https://localhost:8443/v1/chat/completions")


@airlock.agent
def asker(ctx: airlock.Context):
    question = "What is six times seven?"
    ask = {"model": "example-model", "messages": [{"role": "user", "content": question}]}

    whole = requests.post(API, json=ask, timeout=30)
    whole.raise_for_status()
    answer = whole.json()["choices"][0]["message"]["content"]

    streamed, tokens = "", 0
    with httpx.stream("POST", API, json={**ask, "stream": True}, timeout=30) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            streamed += json.loads(line[6:])["choices"][0]["delta"].get("content", "")
            tokens += 1
    assert streamed == answer, (streamed, answer)
    print(f"the model answered in {tokens} tokens: {answer}")

    channel = f"answers:{os.environ.get('AIRLOCK_GROUP_RUN_ID', 'default')}"
    r = redis.Redis.from_url(os.environ["REDIS_URL"], decode_responses=True)
    r.publish(channel, json.dumps({"question": question, "answer": answer, "tokens": tokens}))
    return {"answer": answer, "tokens": tokens}
