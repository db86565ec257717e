"""MQTT (paho) and NATS (nats-py) from a Python agent, under bus rights: its own names work, others are refused."""
import asyncio
import os
import threading

import airlock


@airlock.agent
async def main(ctx: airlock.Context):
    me = os.environ["AIRLOCK_BUS_AGENT"]
    run = os.environ["AIRLOCK_RUN_ID"]
    m = ctx.bus.mqtt()
    got = threading.Event()
    seen = []
    m.on_message = lambda _c, _u, msg: (seen.append(msg.payload.decode()), got.set())
    m.subscribe(f"py/{run}/{me}/in", qos=1)
    await asyncio.sleep(0.3)
    m.publish(f"py/{run}/{me}/in", "over mqtt", qos=1).wait_for_publish(5)
    got.wait(5)
    refused = m.publish(f"py/{run}/someone-else/in", "x", qos=1)
    refused.wait_for_publish(5)

    nc = await ctx.bus.nats()
    sub = await nc.subscribe(f"py.{run}.{me}")
    await nc.publish(f"py.{run}.{me}", b"over nats")
    msg = await sub.next_msg(timeout=5)
    errors = []

    async def on_error(e):
        errors.append(str(e))

    nc._error_cb = on_error
    await nc.publish(f"py.{run}.someone-else", b"x")
    await nc.flush()
    await asyncio.sleep(0.3)
    return {"mqtt": seen, "mqtt_refused_rc": refused.rc, "nats": msg.data.decode(), "inbox": bytes(nc._inbox_prefix).decode()}
