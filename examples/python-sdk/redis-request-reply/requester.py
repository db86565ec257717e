"""Runs the page's request_agent (see replier.py)."""
from isolated_agents_sdk import run_agent, Policy, NetworkPolicy
from request_reply import request_agent

if __name__ == "__main__":
    result = run_agent(
        agent=request_agent,
        working_dir="./workspace",
        host_output_path="./output",
        policy=Policy(
            network=NetworkPolicy(disabled=False, allowed_endpoints=["localhost:6379"]),
            allowed_env_vars=["REDIS_HOST"],
            pip_packages=["redis"],
            timeout_seconds=60,
        ),
    )
    print(f"Requester completed: {result.exit_code}")
