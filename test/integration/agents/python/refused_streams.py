"""Is refused by NATS, Kafka and Redis on purpose, with the clients Python agents use (nats-py,
kafka-python, redis-py): publishes to a subject, produces to a topic and reads a key outside its
rights, then asks what was refused (airlock.denials()) and records it in /output."""
import asyncio
import json
import os

import airlock
import nats
import redis
from kafka import KafkaProducer
from kafka.errors import KafkaError


async def ignore(_error: Exception) -> None:
    """NATS says a refused publish asynchronously (a permissions violation) and keeps the connection."""


async def refused_publish() -> None:
    nc = await nats.connect(os.environ["NATS_URL"], error_cb=ignore)
    await nc.publish("other.subject", b"x")
    await nc.flush()
    await nc.close()


asyncio.run(refused_publish())
producer = KafkaProducer(
    bootstrap_servers=os.environ["KAFKA_BROKERS"],
    security_protocol="SASL_PLAINTEXT",
    sasl_mechanism="SCRAM-SHA-512",
    sasl_plain_username=os.environ["KAFKA_USERNAME"],
    sasl_plain_password=os.environ["KAFKA_PASSWORD"],
    max_block_ms=5000,
    retries=0,
)
try:
    producer.send("not-mine", b"x").get(timeout=10)
    produced = "sent"
except KafkaError as err:
    produced = f"{type(err).__name__}: {err}"
producer.close(timeout=5)
try:
    redis.Redis.from_url(os.environ["REDIS_URL"]).get("not-mine:secret")
except redis.exceptions.NoPermissionError:
    pass
with open("/output/denials.json", "w") as f:
    json.dump({"produced": produced, "denials": airlock.denials()}, f)
