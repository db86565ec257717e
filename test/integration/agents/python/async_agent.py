"""An async agent function: awaited by the runtime, its value saved."""
import asyncio

import airlock


@airlock.agent
async def main(ctx: airlock.Context):
    await asyncio.sleep(0.05)
    return {"async": True}
