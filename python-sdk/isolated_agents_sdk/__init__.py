"""The Isolated Agents SDK's import name, served by airlock: a script that does
`from isolated_agents_sdk import run_agent, Policy, NetworkPolicy` runs unchanged, and its
allow-list is enforced (airlock_sdk has the whole story)."""
from airlock_sdk import (  # noqa: F401
    AgentNotPortable,
    AgentResult,
    AirlockError,
    AirlockNotFound,
    NetworkPolicy,
    Policy,
    PolicyError,
    Runner,
    run_agent,
)

__all__ = ["run_agent", "Runner", "Policy", "NetworkPolicy", "AgentResult", "AirlockError", "AirlockNotFound", "AgentNotPortable", "PolicyError"]
