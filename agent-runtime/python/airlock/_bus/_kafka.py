"""Kafka (kafka-python): client settings with the run's SCRAM user, and event streaming (produce;
consume in a consumer group from the earliest offset)."""
from __future__ import annotations

import os
import time
from typing import Any, Callable, Generic, Iterable, Optional, TypeVar

from .._context import stopping
from ..errors import BusConnectionError, BusPermissionError, require_env
from ._codec import Schema, _decode, _encode

T = TypeVar("T")


def kafka_brokers() -> list[str]:
    return [b.strip() for b in require_env("KAFKA_BROKERS", "kafka", "localhost:9092").split(",") if b.strip()]


def kafka_config(client_id: str = "airlock-agent") -> dict[str, Any]:
    """Keyword arguments for kafka-python's KafkaProducer, KafkaConsumer and KafkaAdminClient:
    the brokers, and the run's own SCRAM credentials when the runner minted them."""
    config: dict[str, Any] = {"bootstrap_servers": kafka_brokers(), "client_id": client_id}
    user, password = os.environ.get("KAFKA_USERNAME"), os.environ.get("KAFKA_PASSWORD")
    if user and password:
        config.update(security_protocol="SASL_PLAINTEXT", sasl_mechanism="SCRAM-SHA-512", sasl_plain_username=user, sasl_plain_password=password)
    return config


class EventStream(Generic[T]):
    """Kafka event stream: produce, and consume in a consumer group (from the earliest offset by default)."""

    def __init__(self, topic: str, config: Callable[[], dict[str, Any]], default_group: str, schema: Optional[Schema[T]] = None, partitions: int = 1) -> None:
        self.topic = topic
        self._config = config
        self._group = default_group
        self._schema = schema
        self._partitions = partitions
        self._where = f"kafka topic {topic}"
        self._producer: Any = None
        self._topic_ready = False

    def _ensure_topic(self) -> None:
        if self._topic_ready:
            return
        from kafka import KafkaAdminClient
        from kafka.admin import NewTopic
        from kafka.errors import KafkaError, NoBrokersAvailable, TopicAlreadyExistsError

        try:
            admin = KafkaAdminClient(**self._config())
        except NoBrokersAvailable as err:
            raise BusConnectionError("kafka", kafka_brokers(), err) from err
        try:
            if self.topic not in admin.list_topics():
                try:
                    admin.create_topics([NewTopic(name=self.topic, num_partitions=self._partitions, replication_factor=1)])
                except (TopicAlreadyExistsError, KafkaError):
                    pass  # created meanwhile, or this identity may not create: using it says which
        finally:
            admin.close()
        self._topic_ready = True

    def produce(self, events: T | Iterable[T]) -> None:
        """Send events in order, each acknowledged by all in-sync replicas."""
        from kafka import KafkaProducer
        from kafka.errors import NoBrokersAvailable, TopicAuthorizationFailedError

        self._ensure_topic()
        if self._producer is None:
            try:
                self._producer = KafkaProducer(**self._config(), acks="all")
            except NoBrokersAvailable as err:
                raise BusConnectionError("kafka", kafka_brokers(), err) from err
        batch = list(events) if isinstance(events, (list, tuple)) else [events]
        futures = [self._producer.send(self.topic, _encode(e, self._schema, self._where).encode("utf-8")) for e in batch]
        self._producer.flush()
        try:
            for f in futures:
                f.get(timeout=30)
        except TopicAuthorizationFailedError as err:
            raise BusPermissionError(f"kafka: the policy does not let this agent produce to topic {self.topic}: add it to bus.kafka.topics.produce") from err

    def consume(self, handler: Callable[[T], Any], group_id: Optional[str] = None, from_beginning: bool = True, limit: Optional[int] = None, idle_timeout: Optional[float] = None, on_ready: Optional[Callable[[], None]] = None) -> int:
        """Handle events until `limit`, `idle_timeout` seconds without one, or the agent is stopped.
        Offsets are committed after each batch is handled. Returns the count handled."""
        from kafka import KafkaConsumer
        from kafka.errors import NoBrokersAvailable

        self._ensure_topic()
        try:
            consumer = KafkaConsumer(self.topic, **self._config(), group_id=group_id or self._group, auto_offset_reset="earliest" if from_beginning else "latest", enable_auto_commit=False)
        except NoBrokersAvailable as err:
            raise BusConnectionError("kafka", kafka_brokers(), err) from err
        handled = 0
        ready = False
        idle_since = time.monotonic()
        try:
            while not stopping.is_set() and (limit is None or handled < limit):
                remaining = 500 if limit is None else min(500, limit - handled)
                batches = consumer.poll(timeout_ms=500, max_records=remaining)
                if not ready and consumer.assignment():
                    ready = True
                    idle_since = time.monotonic()
                    if on_ready:
                        on_ready()
                records = [r for rs in batches.values() for r in rs]
                for record in records:
                    handler(_decode(record.value, self._schema, self._where))
                    handled += 1
                if records:
                    consumer.commit()
                    idle_since = time.monotonic()
                elif ready and idle_timeout is not None and time.monotonic() - idle_since >= idle_timeout:
                    break
        finally:
            consumer.close(autocommit=False)
        return handled

    def close(self) -> None:
        if self._producer is not None:
            self._producer.close(timeout=5)
            self._producer = None
