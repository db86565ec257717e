"""What agent code gets: its environment, its output folder, a logger, a stop flag and a way to say
it is ready. Mirrors the TypeScript AgentContext (agent-runtime/context.ts)."""
from __future__ import annotations

import json
import os
import signal
import sys
import threading
from pathlib import Path
from types import MappingProxyType
from typing import Any, Callable, Mapping

from ._protocol import _jsonable, send_control


class Stopped(BaseException):
    """Raised in the main thread when the runner stops the agent (timeout, cancel): SIGTERM.

    A BaseException, like KeyboardInterrupt, so that a blocking call (a subscription, a queue
    consumer, time.sleep) is interrupted and `finally` blocks run. Catch it to flush and return
    before the grace period ends; left alone, the agent ends as stopped."""


class Output:
    """The output folder inside the container (/output), mounted from the host.
    Every helper refuses a path that would leave it."""

    def __init__(self, directory: str) -> None:
        self.dir = Path(directory).resolve()

    def path(self, name: str | os.PathLike[str]) -> Path:
        full = (self.dir / name).resolve()
        if full != self.dir and self.dir not in full.parents:
            raise ValueError(f'output path "{name}" is outside {self.dir}')
        return full

    def _prepare(self, name: str | os.PathLike[str]) -> Path:
        full = self.path(name)
        full.parent.mkdir(parents=True, exist_ok=True)
        return full

    def write(self, name: str | os.PathLike[str], data: str | bytes) -> Path:
        full = self._prepare(name)
        if isinstance(data, bytes):
            full.write_bytes(data)
        else:
            full.write_text(data, encoding="utf-8")
        return full

    def write_json(self, name: str | os.PathLike[str], value: Any) -> Path:
        return self.write(name, json.dumps(value, indent=2, default=_jsonable) + "\n")

    def append_line(self, name: str | os.PathLike[str], line: str) -> Path:
        full = self._prepare(name)
        with full.open("a", encoding="utf-8") as f:
            f.write(line if line.endswith("\n") else line + "\n")
        return full


class Logger:
    """log("...") and log.info(...) go to stdout; log.warn and log.error to stderr. Line by line."""

    def __call__(self, *args: Any) -> None:
        print(*args, flush=True)

    def info(self, *args: Any) -> None:
        print(*args, flush=True)

    def warn(self, *args: Any) -> None:
        print("warning:", *args, file=sys.stderr, flush=True)

    def error(self, *args: Any) -> None:
        print("error:", *args, file=sys.stderr, flush=True)


_ready_sent = False
_ready_lock = threading.Lock()


def ready() -> None:
    """Tell the runner this agent is ready (e.g. a consumer that has subscribed): run files'
    `waitFor: ready` start the agents waiting on it. Only the first call counts."""
    global _ready_sent
    with _ready_lock:
        if _ready_sent:
            return
        _ready_sent = True
    send_control({"type": "ready"})


stopping = threading.Event()
"""Set when the runner stops the agent (SIGTERM before SIGKILL): `while not airlock.stopping.is_set(): ...`."""

_stop_callbacks: list[Callable[[], None]] = []


def on_stop(callback: Callable[[], None]) -> Callable[[], None]:
    """Call `callback` (in the main thread, from the signal handler) when the runner stops the agent;
    at once if it already has (a stop can come while the agent is still starting). Usable as a decorator."""
    called = False

    def once() -> None:
        nonlocal called
        if not called:
            called = True
            callback()

    _stop_callbacks.append(once)
    if stopping.is_set():
        once()
    return callback


def _on_sigterm(signum: int, frame: Any) -> None:
    first = not stopping.is_set()
    stopping.set()
    if first:
        for callback in list(_stop_callbacks):
            try:
                callback()
            except Exception as err:  # a failing callback must not hide the stop
                print(f"airlock: on_stop callback failed: {err!r}", file=sys.stderr, flush=True)
        raise Stopped("the runner stopped this agent (SIGTERM)")


def install_stop_handler() -> None:
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _on_sigterm)


class Context:
    """Passed to a function decorated with @airlock.agent."""

    def __init__(self) -> None:
        from ._bus import Bus

        env = dict(os.environ)
        self.env: Mapping[str, str] = MappingProxyType(env)
        """The agent's environment: exactly what its policy lets through, plus AIRLOCK_* variables."""
        self.name: str = env.get("AIRLOCK_AGENT_NAME", "agent")
        self.output = Output(env.get("AIRLOCK_OUTPUT_DIR", "/output"))
        self.log = Logger()
        self.bus = Bus(self.name)
        self.stopping = stopping

    def ready(self) -> None:
        ready()

    def denials(self, wait: float = 3.0) -> list[dict[str, Any]]:
        """What the gate, the egress proxy and the brokers refused this agent so far (airlock.denials)."""
        from ._denials import denials

        return denials(wait)

    def on_stop(self, callback: Callable[[], None]) -> Callable[[], None]:
        return on_stop(callback)
