"""One run_agent call as the request `airlock sdk-run` takes: the agent written to a folder of its
own (a function packed with what it uses, or a script with the modules beside it), the policy, the
paths made absolute, and the line of the script that called it (errors name it)."""
from __future__ import annotations

import inspect
import os
import sys
from typing import Any, Callable, Dict, Optional, Tuple, Union

from .agent_source import stage_script, write_agent_file
from .policy import Policy

Agent = Union[Callable[[], Any], str, "os.PathLike[str]"]


def caller() -> Tuple[str, Optional[int]]:
    """The first frame outside this package (and the SDK's import name): the user's run_agent line."""
    here = os.path.dirname(os.path.abspath(__file__))
    for frame in inspect.stack(0)[1:]:
        path = os.path.abspath(frame.filename)
        if not path.startswith(here) and "isolated_agents_sdk" not in path:
            return path, frame.lineno
    return os.path.abspath(sys.argv[0] or "."), None


def build_request(
    agent: Agent, folder: str, working_dir: Optional[str], host_output_path: str, policy: Optional[Policy]
) -> Dict[str, Any]:
    caller_file, caller_line = caller()
    if callable(agent):
        agent_file, name = write_agent_file(agent, folder)
    else:
        agent_file, name = stage_script(os.fspath(agent), folder)
    return {
        "agent": agent_file,
        "name": name,
        "caller": {"file": caller_file, **({"line": caller_line} if caller_line else {})},
        "working_dir": os.path.abspath(working_dir) if working_dir else None,
        "host_output_path": os.path.abspath(host_output_path),
        "python": sys.executable,
        "policy": (policy or Policy()).to_request(),
    }
