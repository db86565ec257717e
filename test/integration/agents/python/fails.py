"""Raises: the traceback starts at the agent's own frame, the exit code is 1."""
import airlock


def deeper():
    raise RuntimeError("the agent gave up")


@airlock.agent
def main(ctx: airlock.Context):
    deeper()
