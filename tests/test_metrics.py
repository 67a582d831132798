"""Issue 8: /metrics counts support tickets by the state each transition reaches (F11)."""
from __future__ import annotations

from aiohttp.test_utils import TestClient, TestServer

from bot.metrics import REGISTRY
from bot.web.app import build_web_app
from tests.flows.support_steps import END, claimed


def tickets(state: str) -> float:
    return REGISTRY.get_sample_value("esign_tickets_total", {"state": state}) or 0.0


async def test_a_tickets_life_is_counted_by_state_and_scraped(bot_harness):
    before = {state: tickets(state) for state in ("pending", "open", "resolved")}
    buyer = bot_harness.user()

    agent = await claimed(bot_harness, buyer)  # 联系客服 → pending, then 接单 → open
    await buyer.tap(END)  # → resolved
    bot_harness.advance(minutes=10)
    await buyer.send("还有一个问题")  # reopened within the window: open again (the agent keeps it)
    await agent.command("/close", topic=buyer)  # → resolved

    assert {state: tickets(state) - before[state] for state in before} == {"pending": 1, "open": 2, "resolved": 2}
    app = build_web_app(bot_harness.app, bot_harness.bot, bot_harness.dp)
    async with TestClient(TestServer(app)) as client:
        async with client.get("/metrics") as resp:
            body = await resp.text()
    assert f'esign_tickets_total{{state="resolved"}} {tickets("resolved")}' in body
