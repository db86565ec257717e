"""airlock.denials(): what the gate, the egress proxy and the brokers refused this agent so far, as
the runner reports it, so agent code (and a model driving it) can say what it needs instead of
retrying blindly. The runner keeps the list in a read-only file (/run/airlock/refusals.jsonl); this
asks it for a fresh one over the control channel and waits briefly for the answer. The same as
ctx.denials() in the TypeScript runtime (agent-runtime/denials.ts)."""
from __future__ import annotations

import json
import os
import secrets
import time
from typing import Any

from ._protocol import send_control

REFUSALS_DIR = "/run/airlock"
REFUSALS_FILE = f"{REFUSALS_DIR}/refusals.jsonl"
REFUSALS_ANSWERED = f"{REFUSALS_DIR}/refusals.answered"
_MAX_BYTES = 4 * 1024 * 1024


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read(_MAX_BYTES + 1)
    except OSError:
        return None


def denials(wait: float = 3.0) -> list[dict[str, Any]]:
    """The refusals so far: dicts with time, layer, kind, action, resource, resourceType, count, rule,
    fix and (when no policy line can allow it) never. Asks the runner for a fresh list and waits up
    to `wait` seconds for it. Empty where the runner keeps no live list."""
    if not os.path.isdir(REFUSALS_DIR):
        return []  # the runner keeps no live list for this agent
    request = secrets.token_hex(8)
    send_control({"type": "refusals", "id": request})
    until = time.monotonic() + wait
    while time.monotonic() < until:
        answered = _read(REFUSALS_ANSWERED)
        if answered is not None and request in answered.split("\n"):
            break
        time.sleep(0.025)
    text = _read(REFUSALS_FILE) or ""
    if len(text) > _MAX_BYTES:
        raise RuntimeError(f"{REFUSALS_FILE} is larger than {_MAX_BYTES} bytes")
    return [json.loads(line) for line in text.split("\n") if line]
