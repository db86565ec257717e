"""Uses the whole context: env, output helpers (and their refusal to leave /output), log, ready, result."""
import airlock


@airlock.agent
def main(ctx: airlock.Context):
    ctx.log("info line")
    ctx.log.warn("a warning")
    ctx.output.write("a/b.txt", "nested\n")
    ctx.output.write_json("data.json", {"n": 1})
    ctx.output.append_line("lines.txt", "one")
    ctx.output.append_line("lines.txt", "two")
    try:
        ctx.output.path("../escape.txt")
        escaped = True
    except ValueError:
        escaped = False
    ctx.ready()
    return {
        "name": ctx.name,
        "allowed": ctx.env.get("GREETING"),
        "host_home_leaked": "HOST_ONLY" in ctx.env,
        "escaped": escaped,
        "module_level_same": airlock.name == ctx.name,
    }
