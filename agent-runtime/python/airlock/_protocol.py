"""The control channel to the runner: single stdout lines that start with an ASCII record separator
and "airlock:", followed by JSON. The same lines as agent-runtime/protocol.ts writes; any language
can print them (see the README's "Readiness from any language")."""
import json
import sys
import threading
from typing import Any

CONTROL_PREFIX = "\x1eairlock:"

_lock = threading.Lock()


def send_control(message: dict[str, Any]) -> None:
    line = CONTROL_PREFIX + json.dumps(message, separators=(",", ":"), default=_jsonable) + "\n"
    with _lock:
        sys.stdout.flush()
        sys.stdout.write(line)
        sys.stdout.flush()


def _jsonable(value: Any) -> Any:
    """Values json cannot encode as they are: pydantic models, dataclasses, sets, anything else as text."""
    if hasattr(value, "model_dump"):
        return value.model_dump()
    if hasattr(value, "__dataclass_fields__"):
        import dataclasses

        return dataclasses.asdict(value)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)
