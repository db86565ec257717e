"""The Python agent image's entrypoint: `python3 -m airlock._bootstrap /opt/agent/run/agent.py`.

By the time this runs the egress gate is in force and the process has no capabilities. It runs the
agent file as __main__ (a plain script just runs); if the file marked a function with
@airlock.agent, that function is then called with a Context and what it returns is saved in the
result. Output is line-buffered, so the runner sees every line as it is printed. Anything that is
not a .py file (a command, in an image derived from this one) is executed as it is.
"""
from __future__ import annotations

import io
import os
import runpy
import sys
import traceback
from typing import Any, Awaitable, Callable

from . import _agent
from ._context import Context, Stopped, install_stop_handler
from ._protocol import send_control

STOPPED_EXIT = 143  # as SIGTERM would end it


def _print_agent_traceback(err: BaseException) -> None:
    """The traceback from the agent's own first frame on: the runtime's and runpy's frames say nothing to the reader."""
    tb = err.__traceback__
    while tb is not None and tb.tb_next is not None:
        filename = tb.tb_frame.f_code.co_filename
        if not (filename.startswith(_RUNTIME_DIR) or filename.startswith("<frozen")):
            break
        tb = tb.tb_next
    traceback.print_exception(type(err), err, tb)
    sys.stderr.flush()


_RUNTIME_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


def _missing_module_hint(err: ModuleNotFoundError) -> None:
    # One line the runner turns into "add it to packages.pip in <policy>".
    print(f"airlock: the agent imports {err.name!r}, which is not installed in its image", file=sys.stderr, flush=True)


def _run_agent_function(fn: Callable[[Context], Any]) -> Any:
    ctx = Context()
    try:
        value = fn(ctx)
        if hasattr(value, "__await__"):
            # Only async agents pay for asyncio's import (tens of milliseconds).
            import asyncio

            value = asyncio.run(_awaited(value, ctx))
        return value
    finally:
        ctx.bus.close()


async def _awaited(awaitable: Awaitable[Any], ctx: Context) -> Any:
    try:
        return await awaitable
    finally:
        # Async clients (NATS) are closed in the loop they belong to.
        await ctx.bus.aclose()


def main(argv: list[str]) -> int:
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(line_buffering=True)
    entry = argv[0] if argv else os.environ.get("AIRLOCK_AGENT_ENTRY")
    if not entry:
        print("airlock: no agent entry given", file=sys.stderr)
        return 2
    if not entry.endswith(".py"):
        try:
            os.execvp(argv[0], argv)
        except OSError as err:
            print(f"airlock: cannot run {argv[0]}: {err.strerror}", file=sys.stderr)
            return 127
    install_stop_handler()
    sys.argv = [entry, *argv[1:]]
    sys.path.insert(0, os.path.dirname(os.path.abspath(entry)))
    try:
        runpy.run_path(entry, run_name="__main__")
        fn = _agent.registered()
        if fn is not None:
            value = _run_agent_function(fn)
            if value is not None:
                send_control({"type": "result", "value": value})
    except SystemExit as exit_:
        code = exit_.code
        if code is None or isinstance(code, int):
            return code or 0
        print(code, file=sys.stderr)
        return 1
    except Stopped:
        return STOPPED_EXIT
    except ModuleNotFoundError as err:
        _print_agent_traceback(err)
        _missing_module_hint(err)
        return 1
    except BaseException as err:
        _print_agent_traceback(err)
        return 1
    return 0


if __name__ == "__main__":
    code = main(sys.argv[1:])
    sys.stdout.flush()
    sys.stderr.flush()
    sys.exit(code)
