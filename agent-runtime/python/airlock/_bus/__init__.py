"""ctx.bus for Python agents: clients for Redis (redis-py), RabbitMQ (pika) and Kafka (kafka-python),
configured from REDIS_URL, AMQP_URL and KAFKA_BROKERS (with the run's own credentials when the
policy has a bus section), plus helpers for the four patterns. The helpers speak the same wire
format as the TypeScript runtime, so a Python producer and a TypeScript consumer work together.
Clients are created on first use; the runtime closes them when the agent returns."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional, TypeVar

from ._codec import Schema
from ._kafka import EventStream, kafka_config
from ._mqtt import connect_mqtt
from ._nats import connect_nats
from ._rabbitmq import WorkQueue, connect_rabbitmq
from ._redis import PubSub, RequestReply, Subscription, connect_redis

if TYPE_CHECKING:
    import paho.mqtt.client as paho
    import pika
    import redis
    from nats.aio.client import Client as NatsClient

__all__ = ["connect_mqtt", "connect_nats", "Bus", "PubSub", "Subscription", "RequestReply", "WorkQueue", "EventStream", "Schema", "connect_redis", "connect_rabbitmq", "kafka_config"]

T = TypeVar("T")
Req = TypeVar("Req")
Res = TypeVar("Res")


class Bus:
    """Ready-made clients and pattern helpers. Clients are shared and closed when the agent returns."""

    def __init__(self, agent_name: str) -> None:
        self._name = agent_name
        self._redis: Any = None
        self._rabbit: Any = None
        self._mqtt: Any = None
        self._nats: Any = None
        self._streams: list[EventStream[Any]] = []

    def redis(self) -> "redis.Redis":
        """A connected redis-py client (shared; strings decoded)."""
        if self._redis is None:
            self._redis = connect_redis()
        return self._redis

    def rabbitmq(self) -> "pika.BlockingConnection":
        """A pika BlockingConnection (shared). Publish with exchange=os.environ.get("AIRLOCK_AMQP_EXCHANGE", "") under bus rights."""
        if self._rabbit is None or not self._rabbit.is_open:
            self._rabbit = connect_rabbitmq()
        return self._rabbit

    def mqtt(self) -> "paho.Client":
        """A connected paho-mqtt client (shared; MQTT 5, the run's client id, its loop running)."""
        if self._mqtt is None or not self._mqtt.is_connected():
            self._mqtt = connect_mqtt(self._name)
        return self._mqtt

    async def nats(self) -> "NatsClient":
        """A connected nats-py client (asyncio; shared within the event loop), with the run's own inbox prefix."""
        if self._nats is None or self._nats.is_closed:
            self._nats = await connect_nats(self._name)
        return self._nats

    async def aclose(self) -> None:
        """close(), and drain the NATS connection (in its own event loop)."""
        if self._nats is not None and not self._nats.is_closed:
            try:
                await self._nats.drain()
            except Exception:
                pass
        self._nats = None
        self.close()

    def kafka_config(self) -> dict[str, Any]:
        """kwargs for kafka-python clients: KafkaProducer(**ctx.bus.kafka_config())."""
        return kafka_config(f"airlock-{self._name}")

    def pubsub(self, channel: str, schema: Optional[Schema[T]] = None) -> PubSub[T]:
        return PubSub(channel, self.redis, schema)

    def request_reply(self, service: str, request: Optional[Schema[Req]] = None, reply: Optional[Schema[Res]] = None) -> RequestReply[Req, Res]:
        return RequestReply(service, self.redis, request, reply)

    def work_queue(self, queue: str, schema: Optional[Schema[T]] = None) -> WorkQueue[T]:
        return WorkQueue(queue, self.rabbitmq, schema)

    def stream(self, topic: str, schema: Optional[Schema[T]] = None, partitions: int = 1) -> EventStream[T]:
        s: EventStream[T] = EventStream(topic, self.kafka_config, self._name, schema, partitions)
        self._streams.append(s)
        return s

    def close(self) -> None:
        for s in self._streams:
            try:
                s.close()
            except Exception:
                pass
        if self._mqtt is not None:
            try:
                self._mqtt.disconnect()
                self._mqtt.loop_stop()
            except Exception:
                pass
        for client in (self._redis, self._rabbit):
            try:
                if client is not None:
                    client.close()
            except Exception:
                pass
        self._redis = self._rabbit = self._mqtt = None
