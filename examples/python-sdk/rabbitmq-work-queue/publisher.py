"""Publisher agent that sends tasks to RabbitMQ queue."""
from isolated_agents_sdk import run_agent, Policy, NetworkPolicy
import os

def publisher_agent():
    """Publish tasks to RabbitMQ work queue."""
    import pika
    import json
    from pathlib import Path

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

    # Publish tasks
    tasks_published = 0
    for i in range(10):
        task = {
            "id": i,
            "data": f"Task {i}",
            "priority": i % 3
        }

        channel.basic_publish(
            exchange='',
            routing_key=queue_name,
            body=json.dumps(task),
            properties=pika.BasicProperties(
                delivery_mode=2,  # Make message persistent
            )
        )

        tasks_published += 1
        print(f"Published task {i}")

    # Save summary
    (output_dir / "summary.txt").write_text(
        f"Published {tasks_published} tasks to {queue_name}"
    )

    connection.close()

if __name__ == "__main__":
    result = run_agent(
        agent=publisher_agent,
        working_dir="./workspace",
        host_output_path="./output",
        policy=Policy(
            network=NetworkPolicy(
                disabled=False,
                allowed_endpoints=["localhost:5672"]
            ),
            allowed_env_vars=["RABBITMQ_URL"],
            pip_packages=["pika"],
        )
    )

    print(f"Publisher completed: {result.exit_code}")
