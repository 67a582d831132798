"""Refunds that happen (R21): money taken for an order that was cancelled meanwhile is a refund
case with a 🔁 退款 button in the staff group; an agent's tap (or `python -m bot refunds refund ID`)
pays it back through the provider that took it, once however often it is asked, and the buyer
is told once. Real HTTP to the local WeChat Pay and Alipay, the CLI as a subprocess."""
from __future__ import annotations

import asyncio
import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
from esign_devkit.testing.bot_api_server import serve_bot_api

from services.orders import refund_case_id
from tests.conftest import TEST_REDIS_URL
from tests.web.test_provider_checkout import flagship_submitted

ROOT = Path(__file__).resolve().parents[2]
MCHID, APP_ID = "1900000109", "2021000122671234"
REFUND_PATH = "/v3/refund/domestic/refunds"


async def paid_after_cancelling(w, buyer, gateway: str) -> str:
    """The buyer opens the payment, cancels the order in chat, then pays all the same: the
    provider takes the money, the order cannot take it. Returns the refund case id."""
    h = w.harness
    sent, _ = await flagship_submitted(w, buyer, gateway=gateway if len(h.app.gateways) > 1 else None)
    order = await h.expect_order(buyer, "pending_payment")
    await h.orders.cancel(order.id, user_id=buyer.id)
    if gateway == "wechat":
        tx = await w.wechat.pay(MCHID, order.id)
        await w.wechat.notices.drain()
        charge = f"wechat:{tx.transaction_id}"
    else:
        async with aiohttp.ClientSession() as browser, browser.get(sent.location) as cashier:
            assert cashier.status == 200
        trade = await w.alipay.pay(APP_ID, order.id)
        await w.alipay.notices.drain()
        charge = f"alipay:{trade.trade_no}"
    assert (await h.orders.get(order.id)).refund_pending
    assert any("无法完成" in t for t in buyer.bot_messages())  # the buyer hears it is kept for a refund
    return refund_case_id(charge)


def refunded_texts(buyer) -> list[str]:
    return [t for t in buyer.bot_messages() if "已原路退回" in t]


async def test_R21_an_agent_refunds_from_the_staff_group_through_wechat_pay_once(provider_world):
    w = await provider_world("wechat")
    h, fake = w.harness, w.wechat
    buyer = h.user()
    case_id = await paid_after_cancelling(w, buyer, "wechat")
    agent = h.agent(name="Li")
    alert = agent.expect(rf"待退款.*\n.*退款单 {case_id}")
    assert "🔁 退款" in str(alert["reply_markup"])

    fake.refund_gate = asyncio.Event()  # WeChat Pay is still at it while both taps are answered
    answers = await asyncio.gather(agent.tap("🔁 退款"), agent.tap("🔁 退款"))  # two taps at once
    fake.refund_gate.set()
    assert await refunded_eventually(h, case_id)
    await fake.notices.drain()

    asked = [r for r in fake.requests if r[:2] == ("POST", REFUND_PATH)]
    assert len(asked) == 1, fake.requests
    (refund,) = fake.refunds.values()
    assert (refund.out_refund_no, refund.refund, refund.total) == (case_id, 5_980_000, 5_980_000)
    assert refund.status == "SUCCESS"
    case = await h.app.refunds.case(case_id)
    assert case.state.status == "refunded" and case.state.refunded_fen == 5_980_000
    assert case.state.provider_refund_id == refund.refund_id and case.state.by == f"agent:{agent.id}"
    assert len(refunded_texts(buyer)) == 1 and "¥59,800.00" in refunded_texts(buyer)[0]
    assert any("没有重复退款" in (a or {}).get("text", "") for a in answers)
    # The refund notice (REFUND.SUCCESS, to the refund's notify_url) was verified and answered.
    assert [d.status for d in fake.notices.deliveries if b"REFUND" in d.body] == [200]
    # Pressed again later: still one refund at WeChat Pay.
    await agent.tap("🔁 退款")
    assert len([r for r in fake.requests if r[:2] == ("POST", REFUND_PATH)]) == 1
    listed = await agent.command("/refunds")
    assert "没有待处理的退款" in listed.text


async def test_R21_refunds_command_lists_open_cases_with_a_button_each(provider_world):
    w = await provider_world("wechat")
    h = w.harness
    buyer = h.user()
    case_id = await paid_after_cancelling(w, buyer, "wechat")
    agent = h.agent(name="Li")

    listed = await agent.command("/refunds")

    assert "待处理的退款（1）" in listed.text and case_id in listed.text and "待退款" in listed.text
    assert listed.buttons == [f"🔁 退款 {case_id}"]
    await agent.tap(f"🔁 退款 {case_id}")
    assert await refunded_eventually(h, case_id)


async def refunded_eventually(h, case_id: str) -> bool:
    """WeChat Pay answers PROCESSING and tells REFUND.SUCCESS in a notice shortly after (waits on
    the outcome, not a fixed time, so a busy machine only makes it slower)."""
    for _ in range(1500):
        if (await h.app.refunds.case(case_id)).state.status == "refunded":
            return True
        await asyncio.sleep(0.02)
    return False


async def test_R21_the_command_line_refunds_through_alipay_once_and_the_buyer_is_told(provider_world, redis):
    w = await provider_world("alipay")
    h, fake = w.harness, w.alipay
    buyer = h.user()
    case_id = await paid_after_cancelling(w, buyer, "alipay")
    runner, api_base = await serve_bot_api(h.telegram, h.bot.token)
    settings = h.app.settings
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WECHAT_", "ALIPAY_", "WEB_GATEWAY"))}
    env.update(REDIS_URL=TEST_REDIS_URL, WEB_GATEWAY="alipay", PUBLIC_BASE_URL=w.base, BOT_TOKEN=h.bot.token,
               TELEGRAM_API_BASE=api_base, ALIPAY_APP_ID=settings.alipay_app_id,
               ALIPAY_APP_PRIVATE_KEY=settings.alipay_app_private_key.get_secret_value(),
               ALIPAY_PUBLIC_KEY=settings.alipay_public_key, ALIPAY_GATEWAY_URL=settings.alipay_gateway_url)

    async def cli(*args: str) -> tuple[int, str, str]:
        process = await asyncio.create_subprocess_exec(sys.executable, "-m", "bot", "refunds", *args, cwd=ROOT, env=env,
                                                       stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(process.communicate(), 60)
        return process.returncode or 0, out.decode(), err.decode()

    try:
        listed = await cli("list", "--open")
        first = await cli("refund", case_id)
        second = await cli("refund", case_id)
        await fake.notices.drain()
    finally:
        await runner.cleanup()

    assert listed[0] == 0 and case_id in listed[1] and "via alipay" in listed[1] and "pending" in listed[1]
    assert first[0] == 0 and f"Refund case {case_id} refunded" in first[1], first
    assert second[0] == 0 and "nothing was refunded twice" in second[1], second
    assert [m for m, code in fake.requests if m == "alipay.trade.refund"] == ["alipay.trade.refund"]
    trade = next(iter(fake.trades.values()))
    assert list(trade.refunds) == [case_id] and trade.refunds[case_id].amount == 5_980_000
    assert trade.trade_status == "TRADE_CLOSED"
    assert len(refunded_texts(buyer)) == 1
    assert (await h.app.refunds.case(case_id)).state.status == "refunded"
    # Alipay's refund notice came to the payment's notify URL: verified, answered success, nothing more.
    assert [d.answer for d in fake.notices.deliveries if b"out_biz_no" in d.body] == ["success"]


async def test_R21_a_partial_refund_from_the_command_line_pays_back_only_that(provider_world, clock):
    clock.set(datetime.now(UTC))  # the command runs on the system clock: WeChat Pay's signatures are timed
    w = await provider_world("wechat")
    h, fake = w.harness, w.wechat
    case_id = await paid_after_cancelling(w, h.user(), "wechat")
    env = {**os.environ, "REDIS_URL": TEST_REDIS_URL, "WEB_GATEWAY": "wechat", "PUBLIC_BASE_URL": w.base}
    for name, value in h.app.settings.model_dump().items():
        if name.startswith("wechat_"):
            secret = getattr(value, "get_secret_value", None)
            env[name.upper()] = json.dumps(value) if isinstance(value, dict) else str(secret() if secret else value)
    env.pop("BOT_TOKEN", None)
    process = await asyncio.create_subprocess_exec(sys.executable, "-m", "bot", "refunds", "refund", case_id,
                                                   "--amount", "100.50", cwd=ROOT, env=env,
                                                   stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, (out.decode(), err.decode())
    assert await refunded_eventually(h, case_id)
    await fake.notices.drain()

    (refund,) = fake.refunds.values()
    assert (refund.refund, refund.total) == (10_050, 5_980_000)
    # WeChat Pay answers PROCESSING; its REFUND.SUCCESS notice may be stored before the command prints.
    assert ("sent to 微信支付" in out.decode() or "refunded: ¥100.50" in out.decode()) and "¥100.50" in out.decode()
    assert (await h.app.refunds.case(case_id)).state.refunded_fen == 10_050


async def test_R21_pressed_again_while_wechat_pay_is_processing_asks_it_and_refunds_nothing_twice(provider_world):
    w = await provider_world("wechat")
    h, fake = w.harness, w.wechat
    buyer = h.user()
    case_id = await paid_after_cancelling(w, buyer, "wechat")
    fake.refund_delay = 0.3
    fake.notices.send = lambda url, build: None  # the REFUND.SUCCESS notice is lost
    agent = h.agent(name="Li")

    await agent.tap("🔁 退款")
    assert (await h.app.refunds.case(case_id)).state.status == "refunding"
    agent.expect(r"已提交 微信支付")
    for _ in range(1500):  # WeChat Pay finishes it meanwhile (up to 30 s on a busy machine)
        if all(r.status == "SUCCESS" for r in fake.refunds.values()):
            break
        await asyncio.sleep(0.02)
    await agent.tap("🔁 退款")

    assert (await h.app.refunds.case(case_id)).state.status == "refunded"
    assert len([r for r in fake.requests if r[:2] == ("POST", REFUND_PATH)]) == 1
    assert ("GET", f"{REFUND_PATH}/{case_id}", 200) in fake.requests
    assert len(refunded_texts(buyer)) == 1
