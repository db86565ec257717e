"""RabbitMQ (pika): a connection, and a work queue (durable queue, persistent confirmed messages,
prefetch, acknowledgement after the handler returns)."""
from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any, Callable, Generic, Optional, TypeVar

from .._context import stopping
from ..errors import BusConnectionError, BusPermissionError, require_env
from ._codec import Schema, _decode, _encode, _endpoint

if TYPE_CHECKING:
    import pika

T = TypeVar("T")


def amqp_url() -> str:
    return require_env("AMQP_URL", "rabbitmq", "amqp://localhost:5672")


def connect_rabbitmq() -> "pika.BlockingConnection":
    """A new pika BlockingConnection from AMQP_URL."""
    import pika
    import pika.exceptions

    url = amqp_url()
    params = pika.URLParameters(url)
    params.socket_timeout = 5
    params.blocked_connection_timeout = 30
    try:
        return pika.BlockingConnection(params)
    except pika.exceptions.AMQPConnectionError as err:
        raise BusConnectionError("rabbitmq", [_endpoint(url, 5672)], err) from err


def _ensure_queue(connection: "pika.BlockingConnection", channel: Any, queue: str) -> None:
    """The queue, there before use. Under bus rights (AIRLOCK_AMQP_EXCHANGE) the runner declared every
    queue the policy names exactly and the agent may not configure them: they are only checked
    (passively, on a channel of its own, since a failed check closes it); a queue in a consume prefix
    the agent owns is declared if missing. Without bus rights, declared as always."""
    import pika.exceptions

    if not os.environ.get("AIRLOCK_AMQP_EXCHANGE"):
        channel.queue_declare(queue=queue, durable=True)
        return
    probe = connection.channel()
    try:
        probe.queue_declare(queue=queue, passive=True)
    except pika.exceptions.ChannelClosedByBroker:
        channel.queue_declare(queue=queue, durable=True)
        return
    if probe.is_open:
        probe.close()


class WorkQueue(Generic[T]):
    """RabbitMQ work queue: durable queue, persistent messages, prefetch, acknowledged after the handler returns."""

    def __init__(self, queue: str, connection: Callable[[], "pika.BlockingConnection"], schema: Optional[Schema[T]] = None) -> None:
        self.queue = queue
        self._connection = connection
        self._schema = schema
        self._where = f"rabbitmq queue {queue}"

    def send(self, task: T) -> None:
        """Send one persistent task, confirmed by the broker."""
        import pika
        import pika.exceptions

        connection = self._connection()
        channel = connection.channel()
        try:
            channel.confirm_delivery()
            _ensure_queue(connection, channel, self.queue)
            # Under bus rights, the run's own exchange reaches exactly the queues the policy grants.
            exchange = os.environ.get("AIRLOCK_AMQP_EXCHANGE", "")
            body = _encode(task, self._schema, self._where).encode("utf-8")
            props = pika.BasicProperties(delivery_mode=2, content_type="application/json")
            try:
                channel.basic_publish(exchange=exchange, routing_key=self.queue, body=body, properties=props, mandatory=bool(exchange))
            except pika.exceptions.UnroutableError as err:
                raise BusPermissionError(f"rabbitmq: the policy does not let this agent publish to queue {self.queue}: add it to bus.rabbitmq.queues.publish") from err
        except pika.exceptions.ChannelClosedByBroker as err:
            raise _amqp_refusal(err, self.queue) from err
        finally:
            if channel.is_open:
                channel.close()

    def consume(self, handler: Callable[[T], Any], prefetch: int = 1, limit: Optional[int] = None, idle_timeout: Optional[float] = None, on_ready: Optional[Callable[[], None]] = None) -> int:
        """Process tasks with `handler`; each is acknowledged after it returns and rejected (not
        requeued) when it raises. Ends after `limit` tasks, after `idle_timeout` seconds without one,
        or when the agent is stopped. Returns the number acknowledged."""
        import pika.exceptions

        connection = self._connection()
        channel = connection.channel()
        acked = 0
        try:
            _ensure_queue(connection, channel, self.queue)
            channel.basic_qos(prefetch_count=prefetch)
            idle_since = time.monotonic()
            started = False
            for method, _props, body in channel.consume(self.queue, inactivity_timeout=0.5):
                if not started:
                    started = True
                    if on_ready:
                        on_ready()
                if method is None:
                    if stopping.is_set() or (idle_timeout is not None and time.monotonic() - idle_since >= idle_timeout):
                        break
                    continue
                try:
                    handler(_decode(body, self._schema, self._where))
                except BaseException:
                    channel.basic_nack(method.delivery_tag, requeue=False)
                    raise
                channel.basic_ack(method.delivery_tag)
                acked += 1
                idle_since = time.monotonic()
                if (limit is not None and acked >= limit) or stopping.is_set():
                    break
        except pika.exceptions.ChannelClosedByBroker as err:
            raise _amqp_refusal(err, self.queue) from err
        finally:
            if channel.is_open:
                try:
                    channel.cancel()
                    channel.close()
                except Exception:
                    pass
        return acked


def _amqp_refusal(err: Exception, queue: str) -> Exception:
    code = getattr(err, "reply_code", None)
    if code == 403:
        return BusPermissionError(f"rabbitmq: the policy does not let this agent use queue {queue} ({getattr(err, 'reply_text', err)}): add it to bus.rabbitmq.queues")
    return err
