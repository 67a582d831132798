"""docs/reliability.md, row 8: Redis stops mid-flow for 10 s under a running `python -m bot run`.

A private redis-server (never the shared one) with an append-only file is started for the
test, killed while the buyer is at the confirmation step, and started again on the same port
and data 10 s later. Meanwhile the buyer gets a clear "busy" answer; afterwards the same bot
process (no manual restart) finishes the purchase with nothing lost or doubled.
"""
from __future__ import annotations

import asyncio
import secrets
import shutil
import time

import pytest
from esign_devkit.testing.bot_api_server import serve_bot_api
from esign_devkit.testing.fake_telegram import FakeTelegram
from esign_devkit.testing.private_redis import PrivateRedis

from bot.runtime.redis_client import redis_from_url
from tests.test_process import (
    PAID,
    World,
    bind_and_check,
    buy_until_confirmation,
    clean_env,
    is_invoice,
    run_cli,
    submit_and_pay,
)

BUSY = "服务繁忙"
OUTAGE_SECONDS = 10

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs the redis-server binary")


class OutageWorld(World):
    """The process-test world on a private Redis."""

    def __init__(self, fake, base_url, redis, redis_url: str) -> None:
        super().__init__(fake, base_url, redis)
        self.redis_url = redis_url

    def env(self, **overrides: str) -> dict[str, str]:
        return super().env(REDIS_URL=self.redis_url, **overrides)

    async def admin(self, *args: str) -> str:
        code, out, err = await run_cli("admin", *args, env=clean_env(REDIS_URL=self.redis_url))
        assert code == 0, err
        return out


async def test_redis_stopped_for_10_seconds_mid_flow_loses_nothing(tmp_path):
    server = PrivateRedis(tmp_path)
    await server.start()
    fake = FakeTelegram(bot_id=secrets.randbelow(10**9) + 7 * 10**9)
    runner, base_url = await serve_bot_api(fake, f"{fake.bot_id}:TEST")
    redis = redis_from_url(server.url)
    world = OutageWorld(fake, base_url, redis, server.url)
    try:
        ent_id = await world.seed_enterprise()
        bot = await world.start_bot()
        await buy_until_confirmation(world)
        # The outage starts once the confirmation step is stored (a kill during that write would
        # roll the step back; the buyer is then asked again at the step before).
        for _ in range(600):  # up to 30 s on a busy machine
            if await world.at_rest("Buy:confirm"):
                break
            await asyncio.sleep(0.05)

        await server.kill()
        down_at = time.monotonic()
        busy = await world.send("还在吗", BUSY)  # a message: a "busy" reply
        assert "进度已保留" in busy["text"]
        tap = world.fake.click(world.buyer, "提交订单")  # a button: a "busy" alert
        world.fake.push_update(tap)
        for _ in range(100):
            answer = world.fake.callback_answer(tap.callback_query.id)
            if answer:
                break
            await asyncio.sleep(0.1)
        assert answer and BUSY in answer.get("text", ""), world.failure(f"callback answer: {answer}")
        await asyncio.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - down_at)))

        await server.start()  # same port, same append-only file
        assert bot.running, world.failure("the bot process died during the outage")
        await world.send("再试一次", "订单确认")  # the conversation is where it was
        invoice = await submit_and_pay(world, submit=lambda: world.tap("提交订单", is_invoice))
        await world.push(world.fake.successful_payment_update(world.buyer, invoice["message_id"]), PAID)
        await bind_and_check(world, ent_id)
        orders = await world.orders()
        assert len(orders) == 1 and [e["kind"] for e in orders[0]["events"]].count("paid") == 1
        assert bot.running and len(world.processes) == 1  # never restarted by hand
    finally:
        for process in world.processes:
            await process.stop()
        await runner.cleanup()
        await redis.aclose()
        await server.kill()
