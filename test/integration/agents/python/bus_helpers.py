"""Every ctx.bus helper against the real brokers, under bus rights: the role (AGENT_ROLE) picks the side."""
import os

import airlock


@airlock.agent
def main(ctx: airlock.Context):
    run = os.environ["AIRLOCK_GROUP_RUN_ID"]
    role = os.environ["AGENT_ROLE"]
    events = ctx.bus.pubsub(f"py-events:{run}")
    calc = ctx.bus.request_reply(f"py-calc:{run}")
    tasks = ctx.bus.work_queue(f"py-tasks:{run}")
    stream = ctx.bus.stream(f"py-stream-{run}")
    if role == "consumer":
        with events.subscribe() as sub:
            ctx.ready()
            received = sub.take(3, timeout=30)
        served = calc.serve(lambda body: {"sum": body["x"] + body["y"]}, limit=2)
        done = tasks.consume(lambda task: None, limit=3, idle_timeout=30)
        handled = stream.consume(lambda event: None, group_id=f"py-group-{run}", limit=5, idle_timeout=30)
        return {"received": received, "served": served, "tasks": done, "events": handled}
    delivered = sum(events.publish({"i": i}) for i in range(3))
    replies = [calc.request({"x": 1, "y": 2}, timeout=20), calc.request({"x": 40, "y": 2}, timeout=20)]
    for i in range(3):
        tasks.send({"task": i})
    stream.produce([{"e": i} for i in range(5)])
    try:
        ctx.bus.pubsub("somebody-elses-channel").publish("x")
        refused = None
    except airlock.BusPermissionError as err:
        refused = str(err)
    return {"delivered": delivered, "replies": replies, "refused": refused}
