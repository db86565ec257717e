"""airlock's Python front end: the Isolated Agents SDK's `run_agent`, `Policy` and `NetworkPolicy`,
with the allow-list enforced. Each run_agent call is an airlock run: the agent runs in its own
container whose egress is only the policy's endpoints, with a broker identity of its own that has
exactly the rights in airlock.yaml beside the script (or `Policy(bus=...)`), and its result says
what it refused and the line that would allow it.

    pip install ./node_modules/airlock/python-sdk
    python3 consumer.py & python3 producer.py      # scripts written for the SDK, unchanged
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from typing import Optional

from .driver import run_cli
from .errors import AgentNotPortable, AirlockError, AirlockNotFound, PolicyError
from .policy import NetworkPolicy, Policy
from .request import Agent, build_request
from .result import AgentResult
from .runner import Runner

__all__ = [
    "run_agent",
    "Runner",
    "Policy",
    "NetworkPolicy",
    "AgentResult",
    "AirlockError",
    "AirlockNotFound",
    "AgentNotPortable",
    "PolicyError",
]


def run_agent(
    agent: Agent,
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
    AirlockNotFound when no airlock CLI is installed. One `airlock sdk-run` process per call; for
    many runs from one process (and a warm pool), use `with Runner(pool=N) as r: r.run_agent(...)`."""
    folder = tempfile.mkdtemp(prefix="airlock-sdk-")
    try:
        request = build_request(agent, folder, working_dir, host_output_path, policy)
        request_file = os.path.join(folder, "request.json")
        with open(request_file, "w", encoding="utf-8") as f:
            json.dump(request, f)
        return AgentResult.from_airlock(run_cli(request_file, quiet=quiet))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
