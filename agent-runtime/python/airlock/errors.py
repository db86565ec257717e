"""Errors from bus access, phrased for the person reading the agent's log: which broker, which
endpoint, and whether the policy allows it (so the fix is in the policy) or not (so the broker
itself is not answering). The same wording as the TypeScript runtime (agent-runtime/bus/errors.ts)."""
from __future__ import annotations

import os


class BusConfigError(Exception):
    """A variable the bus needs is not set."""


class BusPermissionError(Exception):
    """The broker refused something the agent's identity has no right to (the policy's bus section decides)."""


class MessageValidationError(Exception):
    """A message is not JSON, or does not match its schema."""


class RequestTimeoutError(TimeoutError):
    """No reply, or no message, within the time given."""


def allowed_endpoints() -> list[str]:
    """The endpoints the runner says the policy allows (AIRLOCK_ALLOWED_ENDPOINTS)."""
    return [e for e in os.environ.get("AIRLOCK_ALLOWED_ENDPOINTS", "").split(",") if e]


def _norm(endpoint: str) -> str:
    endpoint = endpoint.lower()
    return "localhost:" + endpoint[len("127.0.0.1:"):] if endpoint.startswith("127.0.0.1:") else endpoint


def is_allowed(endpoint: str) -> bool:
    return _norm(endpoint) in {_norm(e) for e in allowed_endpoints()}


class BusConnectionError(ConnectionError):
    """The broker could not be reached; says whether the policy allows the endpoint."""

    def __init__(self, service: str, endpoints: list[str], cause: BaseException | None = None) -> None:
        self.service = service
        self.endpoints = endpoints
        self.allowed_by_policy = all(is_allowed(e) for e in endpoints)
        target = ", ".join(endpoints)
        allowed = allowed_endpoints()
        if self.allowed_by_policy:
            why = "the policy allows it, so the broker itself is not answering there (is it running?)"
        else:
            them = "them" if len(endpoints) > 1 else "it"
            why = f"the policy does not allow {them}: add {target} to network.allowedEndpoints (allowed now: {', '.join(allowed) or 'none'})"
        code = type(cause).__name__ if cause is not None else "error"
        super().__init__(f"cannot reach {service} at {target} ({code}): {why}")
        self.__cause__ = cause


def require_env(name: str, service: str, example: str) -> str:
    """Read a required variable, or explain how the policy provides it."""
    value = os.environ.get(name)
    if not value:
        raise BusConfigError(
            f'{service}: {name} is not set. Set it in the policy (env.set: {{ {name}: "{example}" }}), '
            f"list it in env.allow and pass it in, or give the policy a bus.{service} section"
        )
    return value
