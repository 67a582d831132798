"""/metrics counts support tickets by the state each transition reaches (F11)."""
from __future__ import annotations

import contextlib
from dataclasses import replace

from aiohttp.test_utils import TestClient, TestServer
from pydantic import SecretStr

from bot.runtime.metrics import REGISTRY
from bot.web.app import build_web_app
from tests.flows.support_steps import END, claimed


def tickets(state: str) -> float:
    return REGISTRY.get_sample_value("esign_tickets_total", {"state": state}) or 0.0


async def test_a_tickets_life_is_counted_by_state_and_scraped(esign_harness):
    before = {state: tickets(state) for state in ("pending", "open", "resolved")}
    buyer = esign_harness.user()

    agent = await claimed(esign_harness, buyer)  # 联系客服 → pending, then 接单 → open
    await buyer.tap(END)  # → resolved
    esign_harness.advance(minutes=10)
    await buyer.send("还有一个问题")  # reopened within the window: open again (the agent keeps it)
    await agent.command("/close", topic=buyer)  # → resolved

    assert {state: tickets(state) - before[state] for state in before} == {"pending": 1, "open": 2, "resolved": 2}
    token = "metrics-test-token-0123456789"
    settings = esign_harness.app.settings.model_copy(update={"metrics_token": SecretStr(token)})
    app = build_web_app(replace(esign_harness.app, settings=settings), esign_harness.bot, esign_harness.dp)
    async with (TestClient(TestServer(app)) as client,
                client.get("/metrics", headers={"Authorization": f"Bearer {token}"}) as resp):
        body = await resp.text()
    assert f'esign_tickets_total{{state="resolved"}} {tickets("resolved")}' in body


def test_update_kind_is_the_event_type_aiogram_finds():
    from aiogram.types import Update

    from bot.runtime.updates import update_kind

    chat = {"id": 7, "type": "private"}
    user = {"id": 7, "is_bot": False, "first_name": "A"}
    message = {"message_id": 1, "date": 0, "chat": chat, "from": user, "text": "hi"}
    raws = [
        {"update_id": 1, "message": message},
        {"update_id": 2, "callback_query": {"id": "q", "from": user, "chat_instance": "c", "data": "nav:home",
                                            "message": message}},
        {"update_id": 3, "pre_checkout_query": {"id": "p", "from": user, "currency": "CNY", "total_amount": 100,
                                                "invoice_payload": "x"}},
        {"update_id": 4, "edited_message": message, "message": None},
    ]
    for raw in raws:
        update = Update.model_validate(raw)
        assert update_kind(update) == update.event_type


async def test_updates_are_counted_by_type_and_outcome():
    from aiogram.types import Update

    from bot.runtime.metrics import REGISTRY, UpdateMetrics

    def count(kind: str, outcome: str) -> float:
        return REGISTRY.get_sample_value("esign_updates_total", {"type": kind, "outcome": outcome}) or 0.0

    update = Update.model_validate({"update_id": 1, "message": {
        "message_id": 1, "date": 0, "chat": {"id": 7, "type": "private"}, "text": "hi"}})
    metrics = UpdateMetrics()
    before = count("message", "ok"), count("message", "error")

    async def ok(event, data):
        return "done"

    async def fails(event, data):
        raise RuntimeError("boom")

    assert await metrics(ok, update, {}) == "done"
    assert await metrics(ok, update, {}) == "done"
    with contextlib.suppress(RuntimeError):
        await metrics(fails, update, {})
    assert (count("message", "ok") - before[0], count("message", "error") - before[1]) == (2, 1)
