"""The Python runtime on standby in a sandbox (images/agent/airlock-init.sh).

Started, with the bootstrap and its modules imported, before anything about the agent is known, so a
claimed sandbox runs its agent's first line in a few milliseconds instead of after Python's start. It
holds no agent code, no variable of the run and no connection; the sandbox drops every packet until
the run's rules are in force. Its start line arrives on fd 3 once they are:

    @base64(arg)... NAME=base64(value)...   (python3 -m airlock._bootstrap ENTRY)
"""
from __future__ import annotations

import base64
import os
import re
import sys

from . import _bootstrap

START_FD = 3
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_COMMAND = ["python3", "-m", "airlock._bootstrap"]


def _read_start_line() -> str:
    data = bytearray()
    while True:
        chunk = os.read(START_FD, 65536)
        if not chunk:
            break
        at = chunk.find(b"\n")
        data += chunk if at < 0 else chunk[:at]
        if at >= 0:
            break
    os.close(START_FD)
    return data.decode()


def parse_start_tokens(line: str) -> tuple[list[str], dict[str, str]]:
    argv: list[str] = []
    env: dict[str, str] = {}
    for token in line.split(" "):
        if not token:
            continue
        if token.startswith("@"):
            argv.append(base64.b64decode(token[1:]).decode())
            continue
        name, sep, value = token.partition("=")
        if not sep or not _NAME.match(name):
            raise ValueError(f"not a variable on the start line: {token[:40]}")
        env[name] = base64.b64decode(value).decode()
    return argv, env


def main() -> int:
    argv, env = parse_start_tokens(_read_start_line())
    if argv[:3] != _COMMAND:
        print(f"airlock: the runtime on standby starts the bootstrap, not {' '.join(argv)}", file=sys.stderr)
        return 125
    os.environ.update(env)
    code = _bootstrap.main(argv[3:])
    sys.stdout.flush()
    sys.stderr.flush()
    return code


if __name__ == "__main__":
    sys.exit(main())
