"""The smallest Python agent: logs, writes a file, returns a value (saved in the run's result)."""
import platform

import airlock


@airlock.agent
def main(ctx: airlock.Context):
    ctx.log(f"hello from {ctx.name}, Python {platform.python_version()}")
    ctx.output.write("hello.txt", f"hello from {ctx.name}\n")
    return {"greeted": True, "python": platform.python_version()}
