"""Drives the airlock CLI (`airlock sdk-run`) for one run_agent call: the same runner, gate, broker
identities and result files as `airlock run`. The agent's lines stream to this process's stderr as
they are printed; the result comes back as JSON on the CLI's stdout.

The CLI is found, in order: $AIRLOCK_CLI (a command line), the airlock package this front end was
installed from (recorded at install), `airlock` on PATH, node_modules/.bin/airlock in this folder
or one above it."""
from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from typing import Any, Dict, List, Optional

from .errors import AirlockError, AirlockNotFound, PolicyError

MAX_RESULT_BYTES = 64 * 1024 * 1024


def _node() -> str:
    return os.environ.get("AIRLOCK_NODE") or shutil.which("node") or "node"


def find_cli() -> List[str]:
    configured = os.environ.get("AIRLOCK_CLI")
    if configured:
        return shlex.split(configured)
    try:
        from ._install import AIRLOCK_ROOT  # written by the build backend
    except ImportError:
        AIRLOCK_ROOT = None
    if AIRLOCK_ROOT:
        main = os.path.join(AIRLOCK_ROOT, "dist", "runner", "cli", "main.js")
        if os.path.isfile(main):
            return [_node(), main]
    on_path = shutil.which("airlock")
    if on_path:
        return [on_path]
    folder = os.getcwd()
    while True:
        candidate = os.path.join(folder, "node_modules", ".bin", "airlock")
        if os.path.isfile(candidate):
            return [candidate]
        parent = os.path.dirname(folder)
        if parent == folder:
            break
        folder = parent
    raise AirlockNotFound(
        "cannot find the airlock CLI (not recorded at install, not on PATH, no node_modules/.bin/airlock here or above)",
        "AIRLOCK_NOT_FOUND",
        "npm install airlock in this project (or set AIRLOCK_CLI to the command, e.g. AIRLOCK_CLI='npx airlock')",
    )


def run_cli(request_file: str, quiet: bool = False) -> Dict[str, Any]:
    command = [*find_cli(), "sdk-run", "--request", request_file, *(["--quiet"] if quiet else [])]
    try:
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr_target())
    except OSError as err:
        raise AirlockNotFound(f"cannot start {command[0]}: {err.strerror}", "AIRLOCK_NOT_FOUND", "install Node.js 20 or later, and airlock") from err
    assert proc.stdout is not None
    out = proc.stdout.read(MAX_RESULT_BYTES + 1)
    proc.stdout.close()
    code = proc.wait()
    if len(out) > MAX_RESULT_BYTES:
        raise AirlockError(f"airlock's result is larger than {MAX_RESULT_BYTES} bytes", "RESULT_TOO_LARGE")
    last = out.decode("utf-8", "replace").strip().splitlines()[-1:] or [""]
    try:
        value = json.loads(last[0])
    except ValueError:
        raise AirlockError(f"airlock exited with {code} and gave no result (its message is above)", "NO_RESULT") from None
    return answer_of(value)


def answer_of(value: Dict[str, Any]) -> Dict[str, Any]:
    """The result in an answer of `airlock sdk-run`, or its error raised as this package's typed error."""
    error: Optional[Dict[str, Any]] = value.get("error") if isinstance(value.get("error"), dict) else None
    if error:
        cls = PolicyError if error.get("code") in ("POLICY_INVALID", "PIP_UNPINNED") else AirlockError
        raise cls(str(error.get("message", "")), str(error.get("code", "AIRLOCK")), error.get("fix"))
    result = value.get("result")
    if not isinstance(result, dict):
        raise AirlockError("airlock's answer has no result", "NO_RESULT")
    return result


def stderr_target() -> Any:
    """The agents' lines go to this process's stderr (when it is a real file; else the inherited one)."""
    try:
        sys.stderr.fileno()
        return sys.stderr
    except (AttributeError, OSError, ValueError):
        return None
