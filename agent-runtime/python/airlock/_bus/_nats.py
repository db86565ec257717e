"""NATS (nats-py, asyncio): a connection from NATS_URL with the run's own inbox prefix (under bus
rights the run may subscribe to its own inbox only, so request/reply needs it)."""
from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlparse

from ..errors import BusConnectionError, require_env

if TYPE_CHECKING:
    from nats.aio.client import Client as NatsClient


def nats_url() -> str:
    return require_env("NATS_URL", "nats", "nats://localhost:4222")


async def connect_nats(name: str = "agent") -> "NatsClient":
    import nats

    u = urlparse(nats_url())
    endpoint = f"{u.hostname}:{u.port or 4222}"
    options: dict[str, Any] = {"servers": [f"nats://{endpoint}"], "name": name, "connect_timeout": 5, "max_reconnect_attempts": 3}
    if u.username:
        options.update(user=unquote(u.username), password=unquote(u.password or ""))
    if os.environ.get("AIRLOCK_NATS_INBOX_PREFIX"):
        options["inbox_prefix"] = os.environ["AIRLOCK_NATS_INBOX_PREFIX"]
    try:
        return await nats.connect(**options)
    except Exception as err:  # nats-py raises its own errors and OSError alike
        raise BusConnectionError("nats", [endpoint], err) from err
