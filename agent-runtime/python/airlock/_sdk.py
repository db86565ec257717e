"""The Isolated Agents SDK's connection conventions, met with this run's own broker identity.

The SDK's scripts connect the way its page writes them: `redis.Redis(host=REDIS_HOST, port=REDIS_PORT,
password=REDIS_PASSWORD)` (no user name, so Redis would take it as its `default` user),
`pika.URLParameters(RABBITMQ_URL)` publishing through the default exchange and declaring the queues
they use, `KafkaProducer(bootstrap_servers=KAFKA_BROKERS)` with no credentials at all. airlock's
runner gives every run a user of its own on each broker with exactly the policy's rights; this
module makes those unchanged lines use it:

- Redis: REDIS_HOST, REDIS_PORT, REDIS_USERNAME and REDIS_PASSWORD are set from the run's REDIS_URL,
  and a connection to that endpoint that names no user (and no password, or this password) is made
  as the run's user. A script that names another user or password gets what it asked for.
- RabbitMQ: `basic_publish(exchange='')` goes to the run's own exchange (AIRLOCK_AMQP_EXCHANGE),
  which the runner bound to exactly the queues the rights let it publish to, under the queue's own
  name; so it reaches those queues and nothing else (the default exchange would reach every queue).
  Declaring a queue the runner declared for the run (AIRLOCK_AMQP_QUEUES) is made passive: the run
  may use it, not redefine it.
- Kafka: producers, consumers and admin clients default to the run's SCRAM user, and the topics a
  producer sends to or a consumer names are created once if missing (when the rights allow it).
- Pairs: a subscription (Redis SUBSCRIBE/PSUBSCRIBE, NATS, MQTT, a RabbitMQ consumer) tells the
  runner the agent is ready, which is what the front end waits for before it starts a producer of
  the same channel.

Nothing here widens a right: every operation still goes to the broker as the run's user, and the
broker decides. Agent code could do all of it itself; this only saves the SDK user the edits. The
front end (the host's `airlock_sdk` package) runs agents through `run_function` and `run_path`.
"""
from __future__ import annotations

import os
import runpy
import sys
from typing import Any, Callable
from urllib.parse import unquote, urlsplit

from ._context import ready

_LOCAL = {"localhost", "127.0.0.1", "::1"}


def _redis_env() -> None:
    url = os.environ.get("REDIS_URL")
    if not url:
        return
    parts = urlsplit(url)
    values = {
        "REDIS_HOST": parts.hostname or "localhost",
        "REDIS_PORT": str(parts.port or 6379),
        "REDIS_USERNAME": unquote(parts.username or ""),
        "REDIS_PASSWORD": unquote(parts.password or ""),
    }
    for name, value in values.items():
        if value:
            os.environ[name] = value


def _patch_redis() -> None:
    user, password = os.environ.get("REDIS_USERNAME"), os.environ.get("REDIS_PASSWORD")
    if not (user and password):
        return
    try:
        import redis.client
        import redis.connection
    except ImportError:
        return
    hosts = _LOCAL | {os.environ.get("REDIS_HOST", "localhost")}
    port = int(os.environ.get("REDIS_PORT", "6379"))
    original = redis.connection.Connection.__init__

    def connection_init(self: Any, *args: Any, **kwargs: Any) -> None:
        host = kwargs.get("host", args[0] if args else "localhost")
        target = int(kwargs.get("port", args[1] if len(args) > 1 else 6379))
        anonymous = kwargs.get("username") is None and kwargs.get("credential_provider") is None
        if host in hosts and target == port and anonymous and kwargs.get("password") in (None, password):
            kwargs["username"], kwargs["password"] = user, password
        original(self, *args, **kwargs)

    redis.connection.Connection.__init__ = connection_init  # type: ignore[method-assign]
    for method in ("subscribe", "psubscribe"):
        _ready_after(redis.client.PubSub, method)


def _ready_after(cls: Any, method: str) -> None:
    original = getattr(cls, method)

    def wrapped(self: Any, *args: Any, **kwargs: Any) -> Any:
        value = original(self, *args, **kwargs)
        ready()
        return value

    setattr(cls, method, wrapped)


def _patch_pika() -> None:
    exchange = os.environ.get("AIRLOCK_AMQP_EXCHANGE")
    if not exchange:
        return
    try:
        from pika.adapters.blocking_connection import BlockingChannel
    except ImportError:
        return
    declared = {q for q in os.environ.get("AIRLOCK_AMQP_QUEUES", "").split(",") if q}
    publish, declare = BlockingChannel.basic_publish, BlockingChannel.queue_declare

    def basic_publish(self: Any, *args: Any, **kwargs: Any) -> Any:
        if args and args[0] == "":
            args = (exchange, *args[1:])
        elif kwargs.get("exchange") == "":
            kwargs["exchange"] = exchange
        return publish(self, *args, **kwargs)

    def queue_declare(self: Any, queue: str, *args: Any, **kwargs: Any) -> Any:
        if queue in declared:
            if kwargs.get("arguments") or kwargs.get("exclusive") or kwargs.get("auto_delete") or len(args) > 1:
                print(
                    f"airlock: queue_declare({queue!r}, ...) is a passive check: the runner declared it (durable, "
                    "no arguments) and the run may not redefine it",
                    file=sys.stderr,
                )
            return declare(self, queue, passive=True)
        return declare(self, queue, *args, **kwargs)

    BlockingChannel.basic_publish = basic_publish  # type: ignore[method-assign]
    BlockingChannel.queue_declare = queue_declare  # type: ignore[method-assign]
    _ready_after(BlockingChannel, "basic_consume")


def _patch_kafka() -> None:
    user, password = os.environ.get("KAFKA_USERNAME"), os.environ.get("KAFKA_PASSWORD")
    if not (user and password):
        return
    try:
        import kafka
    except ImportError:
        return
    credentials = {
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": os.environ.get("KAFKA_SASL_MECHANISM", "SCRAM-SHA-512").upper(),
        "sasl_plain_username": user,
        "sasl_plain_password": password,
    }
    for cls in (kafka.KafkaProducer, kafka.KafkaConsumer, kafka.KafkaAdminClient):
        cls.DEFAULT_CONFIG.update(credentials)
    created: set[str] = set()

    def ensure(topics: Any, servers: Any) -> None:
        missing = [t for t in topics if isinstance(t, str) and t not in created]
        if not missing:
            return
        from kafka.admin import NewTopic
        from kafka.errors import KafkaError

        try:
            admin = kafka.KafkaAdminClient(bootstrap_servers=servers)
        except KafkaError:
            return  # the client's own connection says why
        try:
            existing = set(admin.list_topics())
            new = [NewTopic(name=t, num_partitions=1, replication_factor=1) for t in missing if t not in existing]
            if new:
                admin.create_topics(new)
        except KafkaError:
            pass  # created meanwhile, or this run may not create it: using it says which
        finally:
            admin.close()
        created.update(missing)

    producer_send = kafka.KafkaProducer.send

    def send(self: Any, topic: str, *args: Any, **kwargs: Any) -> Any:
        if topic not in created:
            ensure([topic], self.config["bootstrap_servers"])
        return producer_send(self, topic, *args, **kwargs)

    consumer_init = kafka.KafkaConsumer.__init__

    def consumer(self: Any, *topics: Any, **configs: Any) -> None:
        if topics:
            ensure(topics, configs.get("bootstrap_servers", os.environ.get("KAFKA_BROKERS", "localhost:9092").split(",")))
        consumer_init(self, *topics, **configs)

    kafka.KafkaProducer.send = send  # type: ignore[method-assign]
    kafka.KafkaConsumer.__init__ = consumer  # type: ignore[method-assign]


def _patch_subscribers() -> None:
    """NATS and MQTT subscriptions say the agent is ready, as Redis's do (pairs wait on it)."""
    if os.environ.get("NATS_URL"):
        try:
            from nats.aio.client import Client as Nats
        except ImportError:
            pass
        else:
            subscribe = Nats.subscribe

            async def nats_subscribe(self: Any, *args: Any, **kwargs: Any) -> Any:
                sub = await subscribe(self, *args, **kwargs)
                ready()
                return sub

            Nats.subscribe = nats_subscribe  # type: ignore[method-assign]
    if os.environ.get("MQTT_URL"):
        try:
            from paho.mqtt.client import Client as Mqtt
        except ImportError:
            return
        _ready_after(Mqtt, "subscribe")


def activate() -> None:
    """Meet the SDK's conventions for the brokers this run has rights on (their variables are set)."""
    _redis_env()
    _patch_redis()
    _patch_pika()
    _patch_kafka()
    _patch_subscribers()


def run_function(fn: Callable[[], Any]) -> Any:
    """An SDK agent function: called with no arguments, as the SDK calls it."""
    activate()
    return fn()


def run_path(path: str) -> None:
    """An SDK agent given as a path: the script runs as __main__, as `python3 script.py` would."""
    activate()
    sys.argv = [path]
    runpy.run_path(path, run_name="__main__")
