"""The Isolated Agents SDK's policy objects, with the SDK's keywords and defaults, plus two of
airlock's own: `bus` (rights on the brokers, the policy's bus section; usually kept in airlock.yaml
beside the scripts instead) and `https` (HTTPS services by name, e.g. the model's API)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional


@dataclass
class NetworkPolicy:
    """Where the agent may connect: host:port endpoints (brokers), nothing else."""

    disabled: Optional[bool] = None
    allowed_endpoints: List[str] = field(default_factory=list)


@dataclass
class Policy:
    network: NetworkPolicy = field(default_factory=NetworkPolicy)
    allowed_env_vars: List[str] = field(default_factory=list)
    pip_packages: List[str] = field(default_factory=list)
    timeout_seconds: Optional[float] = None
    bus: Optional[Dict[str, Any]] = None
    https: Optional[List[Any]] = None

    def to_request(self) -> Dict[str, Any]:
        """The policy as the airlock CLI's `sdk-run` takes it."""
        return {
            "network": {"disabled": self.network.disabled, "allowed_endpoints": list(self.network.allowed_endpoints)},
            "allowed_env_vars": list(self.allowed_env_vars),
            "pip_packages": list(self.pip_packages),
            "timeout_seconds": self.timeout_seconds,
            "bus": self.bus,
            "https": self.https,
        }
