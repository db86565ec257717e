"""Worker agent that processes tasks from a RabbitMQ queue (Example 2 of the Python SDK's page, under airlock).

Two of these run side by side (run.yaml). Each takes one task at a time (prefetch 1), acknowledges it
after the work, and stops once the queue has been quiet for a few seconds."""
import json
import os
import time
from pathlib import Path

import pika

import airlock


@airlock.agent
def worker_agent(ctx: airlock.Context):
    connection = pika.BlockingConnection(pika.URLParameters(os.environ["AMQP_URL"]))
    channel = connection.channel()

    queue_name = f"task-queue:{os.environ.get('AIRLOCK_GROUP_RUN_ID', 'default')}"
    # Under bus rights the runner has declared the queue, and the run's user may use it but not
    # (re)declare it (that is configure, which would also let it delete the queue): check it passively.
    channel.queue_declare(queue=queue_name, durable=True, passive=bool(os.environ.get("AIRLOCK_AMQP_EXCHANGE")))
    channel.basic_qos(prefetch_count=1)
    output_dir = Path("/output")

    processed = []
    last_task = time.monotonic()
    print(f"Worker waiting for tasks on {queue_name}...")
    # With an inactivity timeout, consume() also yields (None, None, None) every half second without a task.
    for method, _properties, body in channel.consume(queue_name, inactivity_timeout=0.5):
        airlock.ready()  # consuming: the publisher may start (only the first call counts)
        if method is None:
            if time.monotonic() - last_task > (4 if processed else 60):
                break  # the queue has been quiet
            continue
        task = json.loads(body)
        print(f"Processing task: {task['id']}")
        time.sleep(0.15)  # the "work"
        processed.append(task["id"])
        channel.basic_ack(delivery_tag=method.delivery_tag)
        last_task = time.monotonic()

    channel.cancel()
    connection.close()
    (output_dir / "results.json").write_text(json.dumps({"worker": ctx.name, "tasks": processed}) + "\n")
    (output_dir / "summary.txt").write_text(f"Processed {len(processed)} tasks\n")
    return {"processed": len(processed)}
