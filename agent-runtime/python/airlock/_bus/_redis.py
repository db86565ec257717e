"""Redis (redis-py): a connected client, publish/subscribe, and request/reply over lists in the
TypeScript runtime's format (agent-runtime/bus/redis.ts)."""
from __future__ import annotations

import json
import time
import uuid
from typing import TYPE_CHECKING, Any, Callable, Generic, Iterator, Optional, TypeVar

from .._context import stopping
from .._protocol import _jsonable
from ..errors import BusConnectionError, BusPermissionError, RequestTimeoutError, require_env
from ._codec import Schema, _check, _decode, _encode, _endpoint

if TYPE_CHECKING:
    import redis

T = TypeVar("T")
Req = TypeVar("Req")
Res = TypeVar("Res")


def redis_url() -> str:
    return require_env("REDIS_URL", "redis", "redis://localhost:6379")


def connect_redis(**options: Any) -> "redis.Redis":
    """A new connected redis-py client (decoded strings). A failure names the endpoint and the policy's part in it."""
    import redis

    url = redis_url()
    client = redis.Redis.from_url(url, **{"decode_responses": True, "socket_connect_timeout": 5, **options})
    try:
        client.ping()
    except (redis.ConnectionError, redis.TimeoutError) as err:
        client.close()
        raise BusConnectionError("redis", [_endpoint(url, 6379)], err) from err
    return client


class Subscription(Generic[T]):
    """Messages published on a channel since subscribe(), queued until read. Iterable; a context manager."""

    def __init__(self, pubsub: Any, where: str, schema: Optional[Schema[T]]) -> None:
        self._pubsub = pubsub
        self._where = where
        self._schema = schema

    def next(self, timeout: Optional[float] = None) -> T:
        """The next message; RequestTimeoutError after `timeout` seconds (None: wait for ever)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            wait = 1.0 if deadline is None else max(0.0, min(1.0, deadline - time.monotonic()))
            message = self._pubsub.get_message(ignore_subscribe_messages=True, timeout=wait)
            if message is not None and message.get("type") in ("message", "pmessage"):
                return _decode(message["data"], self._schema, self._where)
            if deadline is not None and time.monotonic() >= deadline:
                raise RequestTimeoutError(f"{self._where}: no message within {timeout} s")

    def take(self, n: int, timeout: Optional[float] = None) -> list[T]:
        """The next n messages (timeout applies to each)."""
        return [self.next(timeout) for _ in range(n)]

    def __iter__(self) -> Iterator[T]:
        while True:
            yield self.next()

    def close(self) -> None:
        try:
            self._pubsub.close()
        except Exception:
            pass

    def __enter__(self) -> "Subscription[T]":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class PubSub(Generic[T]):
    """Redis publish/subscribe on one channel."""

    def __init__(self, channel: str, client: Callable[[], "redis.Redis"], schema: Optional[Schema[T]] = None) -> None:
        self.channel = channel
        self._client = client
        self._schema = schema
        self._where = f"redis channel {channel}"

    def publish(self, message: T) -> int:
        """Publish one message; returns the number of subscribers that received it."""
        return _redis_call(lambda: self._client().publish(self.channel, _encode(message, self._schema, self._where)), f"publish to channel {self.channel}", "publish")

    def subscribe(self) -> Subscription[T]:
        """Subscribe (confirmed by the server before this returns); messages from now on are kept until read."""
        pubsub = connect_redis().pubsub()
        _redis_call(lambda: pubsub.subscribe(self.channel), f"subscribe to channel {self.channel}", "subscribe")
        # Wait for the server's confirmation: from here on, nothing published is missed.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            message = _redis_call(lambda: pubsub.get_message(timeout=1.0), f"subscribe to channel {self.channel}", "subscribe")
            if message and message.get("type") == "subscribe":
                break
        return Subscription(pubsub, self._where, self._schema)


class RequestReply(Generic[Req, Res]):
    """Redis request/reply: requests on a list, each reply on a list of its own (the TypeScript runtime's format)."""

    def __init__(self, service: str, client: Callable[[], "redis.Redis"], request: Optional[Schema[Req]] = None, reply: Optional[Schema[Res]] = None) -> None:
        self.service = service
        self._client = client
        self._request = request
        self._reply = reply
        self._queue = f"airlock:rpc:{service}:requests"

    def request(self, body: Req, timeout: float = 30.0) -> Res:
        """Send a request and wait for its reply; RequestTimeoutError after `timeout` seconds."""
        request_id = str(uuid.uuid4())
        reply_to = f"airlock:rpc:{self.service}:reply:{request_id}"
        envelope = {"id": request_id, "replyTo": reply_to, "body": _check(body, self._request, f"request to {self.service}")}
        client = self._client()
        _redis_call(lambda: client.lpush(self._queue, json.dumps(envelope, default=_jsonable)), f"request to {self.service}", "keys.write")
        reply = _redis_call(lambda: client.brpop([reply_to], timeout=max(timeout, 0.01)), f"reply from {self.service}", "keys.write")
        if not reply:
            raise RequestTimeoutError(f"no reply from {self.service} within {timeout} s (request {request_id})")
        return _decode(reply[1], self._reply, f"reply from {self.service}")

    def serve(self, handler: Callable[[Req], Res], limit: Optional[int] = None) -> int:
        """Answer requests with `handler` until `limit` were answered (or the agent is stopped); returns the count."""
        client = self._client()
        served = 0
        while (limit is None or served < limit) and not stopping.is_set():
            item = _redis_call(lambda: client.brpop([self._queue], timeout=1), f"requests to {self.service}", "keys.write")
            if not item:
                continue
            envelope = json.loads(item[1])
            body = _check(envelope["body"], self._request, f"request to {self.service}")
            result = handler(body)
            pipe = client.pipeline(transaction=True)
            pipe.lpush(envelope["replyTo"], _encode(result, self._reply, f"reply from {self.service}"))
            pipe.expire(envelope["replyTo"], 60)
            _redis_call(pipe.execute, f"reply from {self.service}", "keys.write")
            served += 1
        return served


def _redis_call(fn: Callable[[], T], what: str, right: str) -> T:
    """Run a Redis command; a refusal names the policy field, a lost connection the endpoint."""
    import redis

    try:
        return fn()
    except redis.exceptions.NoPermissionError as err:
        raise BusPermissionError(f"redis: the policy does not let this agent {what} ({err}): add it to bus.redis.{right}") from err
    except (redis.ConnectionError, redis.TimeoutError) as err:
        raise BusConnectionError("redis", [_endpoint(redis_url(), 6379)], err) from err
