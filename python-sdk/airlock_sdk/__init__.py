"""airlock's Python front end: the Isolated Agents SDK's `run_agent`, `Policy` and `NetworkPolicy`,
with the allow-list enforced. Each run_agent call is an airlock run: the agent runs in its own
container whose egress is only the policy's endpoints, with a broker identity of its own that has
exactly the rights in airlock.yaml beside the script (or `Policy(bus=...)`), and its result says
what it refused and the line that would allow it.

    pip install ./node_modules/airlock/python-sdk
    python3 consumer.py & python3 producer.py      # scripts written for the SDK, unchanged
"""
from __future__ import annotations

import inspect
import json
import os
import shutil
import sys
import tempfile
from typing import Any, Callable, Optional, Union

from .agent_source import stage_script, write_agent_file
from .driver import run_cli
from .errors import AgentNotPortable, AirlockError, AirlockNotFound, PolicyError
from .policy import NetworkPolicy, Policy
from .result import AgentResult

__all__ = ["run_agent", "Policy", "NetworkPolicy", "AgentResult", "AirlockError", "AirlockNotFound", "AgentNotPortable", "PolicyError"]


def _caller() -> tuple:
    """The script line that called run_agent (outside this package): errors name it."""
    here = os.path.dirname(os.path.abspath(__file__))
    for frame in inspect.stack()[2:]:
        if not os.path.abspath(frame.filename).startswith(here) and "isolated_agents_sdk" not in frame.filename:
            return os.path.abspath(frame.filename), frame.lineno
    return os.path.abspath(sys.argv[0] or "."), None


def run_agent(
    agent: Union[Callable[[], Any], str, "os.PathLike[str]"],
    working_dir: Optional[str] = None,
    host_output_path: str = "./output",
    policy: Optional[Policy] = None,
    *,
    quiet: bool = False,
) -> AgentResult:
    """Run `agent` (a function, or the path of a .py script) in an airlock sandbox under `policy`.

    Returns when it has ended, with the SDK's fields (exit_code, stdout, stderr) and airlock's
    (status, outputs, denials). Raises PolicyError for a policy or rights-file problem (named with
    its field and fix), AgentNotPortable when the function uses what cannot travel, and
    AirlockNotFound when no airlock CLI is installed."""
    policy = policy or Policy()
    caller_file, caller_line = _caller()
    folder = tempfile.mkdtemp(prefix="airlock-sdk-")
    try:
        if callable(agent):
            agent_file, name = write_agent_file(agent, folder)
        else:
            agent_file, name = stage_script(os.fspath(agent), folder)
        request = {
            "agent": agent_file,
            "name": name,
            "caller": {"file": caller_file, **({"line": caller_line} if caller_line else {})},
            "working_dir": os.path.abspath(working_dir) if working_dir else None,
            "host_output_path": os.path.abspath(host_output_path),
            "python": sys.executable,
            "policy": policy.to_request(),
        }
        request_file = os.path.join(folder, "request.json")
        with open(request_file, "w", encoding="utf-8") as f:
            json.dump(request, f)
        return AgentResult.from_airlock(run_cli(request_file, quiet=quiet))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
