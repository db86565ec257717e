"""Runs until the runner stops it: the stop flag, on_stop callbacks and `finally` all get their turn."""
import time

import airlock


@airlock.on_stop
def flush():
    airlock.output.write("on-stop.txt", "flushed\n")


@airlock.agent
def main(ctx: airlock.Context):
    ctx.ready()
    try:
        while True:
            time.sleep(0.1)
    finally:
        ctx.output.write("finally.txt", f"stopping={ctx.stopping.is_set()}\n")
