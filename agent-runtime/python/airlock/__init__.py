"""airlock for Python agents: the API agent code is written against.

    import airlock

    @airlock.agent
    def main(ctx: airlock.Context):
        ctx.log("hello from", ctx.name)
        ctx.output.write("hello.txt", "hi\\n")
        return {"greeted": True}          # saved in the run's result

A plain script that never imports airlock runs too. The module-level names (airlock.env,
airlock.output, airlock.log, airlock.ready(), airlock.stopping, airlock.bus) serve scripts that do
not use @airlock.agent.
"""
from __future__ import annotations

import os
import signal as _signal
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Mapping

from ._agent import agent
from ._context import Context, Logger, Output, Stopped, install_stop_handler, on_stop, ready, stopping
from ._denials import denials
from .errors import BusConfigError, BusConnectionError, BusPermissionError, MessageValidationError, RequestTimeoutError

if TYPE_CHECKING:
    from ._bus import Bus

__all__ = [
    "agent", "Context", "Output", "Logger", "Stopped", "on_stop", "ready", "denials", "stopping", "env", "name", "output", "log", "bus",
    "BusConfigError", "BusConnectionError", "BusPermissionError", "MessageValidationError", "RequestTimeoutError",
]

env: Mapping[str, str] = MappingProxyType(dict(os.environ))
"""The agent's environment: exactly what its policy lets through, plus AIRLOCK_* variables."""
name: str = env.get("AIRLOCK_AGENT_NAME", "agent")
output = Output(env.get("AIRLOCK_OUTPUT_DIR", "/output"))
log = Logger()

_bus: "Bus | None" = None


def __getattr__(attr: str) -> Any:
    # airlock.bus is created on first use: importing airlock loads no bus client.
    global _bus
    if attr == "bus":
        if _bus is None:
            from ._bus import Bus

            _bus = Bus(name)
        return _bus
    raise AttributeError(f"module 'airlock' has no attribute {attr!r}")


# A script run as a command (python3 x.py) gets the stop flag too, unless it handles SIGTERM itself.
if _signal.getsignal(_signal.SIGTERM) is _signal.SIG_DFL:
    install_stop_handler()
