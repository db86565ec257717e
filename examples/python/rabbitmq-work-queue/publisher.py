"""Publisher agent that sends tasks to a RabbitMQ queue (Example 2 of the Python SDK's page, under airlock).

Under bus rights this run's own user may write only to its own exchange (AIRLOCK_AMQP_EXCHANGE), which
routes to exactly the queues the policy lets it publish to; mandatory=True turns a queue it may not
reach into an error instead of a silent drop."""
import json
import os
from pathlib import Path

import pika

import airlock


@airlock.agent
def publisher_agent(ctx: airlock.Context):
    connection = pika.BlockingConnection(pika.URLParameters(os.environ["AMQP_URL"]))
    channel = connection.channel()
    channel.confirm_delivery()

    queue_name = f"task-queue:{os.environ.get('AIRLOCK_GROUP_RUN_ID', 'default')}"
    # Under bus rights the runner has declared the queue, and the run's user may use it but not
    # (re)declare it (that is configure, which would also let it delete the queue): check it passively.
    channel.queue_declare(queue=queue_name, durable=True, passive=bool(os.environ.get("AIRLOCK_AMQP_EXCHANGE")))
    exchange = os.environ.get("AIRLOCK_AMQP_EXCHANGE", "")
    output_dir = Path("/output")

    tasks_published = 0
    for i in range(10):
        task = {"id": i, "data": f"Task {i}", "priority": i % 3}
        channel.basic_publish(
            exchange=exchange,
            routing_key=queue_name,
            body=json.dumps(task),
            properties=pika.BasicProperties(delivery_mode=2),  # persistent
            mandatory=True,
        )
        tasks_published += 1
        print(f"Published task {i}")

    (output_dir / "summary.txt").write_text(f"Published {tasks_published} tasks to {queue_name}\n")
    connection.close()
    return {"published": tasks_published}
