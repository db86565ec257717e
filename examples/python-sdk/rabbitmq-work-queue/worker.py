"""Worker agent that processes tasks from RabbitMQ queue."""
from isolated_agents_sdk import run_agent, Policy, NetworkPolicy
import os

def worker_agent():
    """Process tasks from RabbitMQ work queue."""
    import pika
    import json
    from pathlib import Path
    import time

    # Connect to RabbitMQ
    connection = pika.BlockingConnection(
        pika.URLParameters(os.environ["RABBITMQ_URL"])
    )
    channel = connection.channel()

    # Declare queue
    queue_name = "task-queue"
    channel.queue_declare(queue=queue_name, durable=True)

    output_dir = Path("/output")
    output_dir.mkdir(parents=True, exist_ok=True)

    tasks_processed = 0
    results = []

    def callback(ch, method, properties, body):
        nonlocal tasks_processed

        task = json.loads(body)
        print(f"Processing task: {task['id']}")

        # Simulate work
        time.sleep(2)

        result = f"Completed task {task['id']}: {task['data']}"
        results.append(result)
        tasks_processed += 1

        # Acknowledge message
        ch.basic_ack(delivery_tag=method.delivery_tag)

        # Stop after 5 tasks
        if tasks_processed >= 5:
            ch.stop_consuming()

    # Start consuming
    channel.basic_qos(prefetch_count=1)
    channel.basic_consume(queue=queue_name, on_message_callback=callback)

    print(f"Worker waiting for tasks on {queue_name}...")
    channel.start_consuming()

    # Save results
    (output_dir / "results.txt").write_text("\n".join(results))
    (output_dir / "summary.txt").write_text(
        f"Processed {tasks_processed} tasks"
    )

    connection.close()

if __name__ == "__main__":
    result = run_agent(
        agent=worker_agent,
        working_dir="./workspace",
        host_output_path="./output",
        policy=Policy(
            network=NetworkPolicy(
                disabled=False,
                allowed_endpoints=["localhost:5672"]
            ),
            allowed_env_vars=["RABBITMQ_URL"],
            pip_packages=["pika"],
            timeout_seconds=300,
        )
    )

    print(f"Worker completed: {result.exit_code}")
