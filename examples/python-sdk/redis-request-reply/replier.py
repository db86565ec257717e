"""Runs the page's reply_agent (Example 4 gives the two functions and no __main__ block; this is the
one an SDK user writes, in the page's style)."""
from isolated_agents_sdk import run_agent, Policy, NetworkPolicy
from request_reply import reply_agent

if __name__ == "__main__":
    result = run_agent(
        agent=reply_agent,
        working_dir="./workspace",
        host_output_path="./output",
        policy=Policy(
            network=NetworkPolicy(disabled=False, allowed_endpoints=["localhost:6379"]),
            allowed_env_vars=["REDIS_HOST"],
            pip_packages=["redis"],
            timeout_seconds=120,
        ),
    )
    print(f"Replier completed: {result.exit_code}")
