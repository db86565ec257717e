"""Is refused by RabbitMQ on purpose (declares a queue outside its rights, as pika reports it:
ACCESS_REFUSED), then asks what was refused (airlock.denials()) and records it in /output."""
import json
import os

import airlock
import pika

connection = pika.BlockingConnection(pika.URLParameters(os.environ["AMQP_URL"]))
channel = connection.channel()
try:
    channel.queue_declare(queue="not-mine.tasks", durable=True)
    said = "declared"
except pika.exceptions.ChannelClosedByBroker as err:
    said = f"{err.reply_code} {err.reply_text}"
connection.close()
with open("/output/denials.json", "w") as f:
    json.dump({"said": said, "denials": airlock.denials()}, f)
