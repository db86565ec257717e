"""The front end's typed errors: each says what is wrong and the fix."""
from __future__ import annotations

from typing import Optional


class AirlockError(Exception):
    """airlock could not run the agent (its message names the cause and the fix)."""

    def __init__(self, message: str, code: str = "AIRLOCK", fix: Optional[str] = None) -> None:
        super().__init__(message if not fix or fix in message else f"{message}\n  fix: {fix}")
        self.code = code
        self.fix = fix


class AirlockNotFound(AirlockError):
    """No airlock CLI to drive: the package this front end came from, or `airlock` on PATH."""


class AgentNotPortable(AirlockError):
    """The agent function uses something that cannot travel into the sandbox (named in the message)."""


class PolicyError(AirlockError):
    """The policy (or the rights file beside the script) has a problem; the message names the field."""
