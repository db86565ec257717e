"""@airlock.agent: marks the function the runtime calls with a Context once the script has loaded."""
from __future__ import annotations

from typing import Any, Callable, Optional, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

_registered: Optional[Callable[..., Any]] = None


def agent(fn: F) -> F:
    """Mark `fn(ctx)` as the agent: the runtime calls it (sync or async) after the script is loaded,
    and saves what it returns in the run's result (returnValue)."""
    global _registered
    if not callable(fn):
        raise TypeError("@airlock.agent decorates a function: def main(ctx): ...")
    if _registered is not None and _registered is not fn:
        raise RuntimeError(f"@airlock.agent is already on {_registered.__name__}(); an agent file has one agent function")
    _registered = fn
    return fn


def registered() -> Optional[Callable[..., Any]]:
    return _registered
