"""The buyer cancels a web order in chat (我的订单 → 取消订单): its payment is closed at the
provider at once — WeChat Pay's 关闭订单, Alipay's alipay.trade.close — not only when the order
would have expired. When the provider says it was paid meanwhile, the money is kept first: the
payment is applied to the cancelled order as a refund case, staff see it with its 🔁 退款 button
and the buyer is told, once. Real HTTP to the local WeChat Pay and Alipay."""
from __future__ import annotations

import re

import aiohttp
import pytest
from esign_devkit.testing.fake_wechat_pay import new_rsa_key

from services import keys
from services.orders import refund_case_id
from tests.web.conftest import WebWorld
from tests.web.test_provider_checkout import flagship_submitted

MCHID, APP_ID = "1900000109", "2021000122671234"


async def cancel_in_chat(w: WebWorld, buyer, order_id: str) -> str:
    """我的订单 → the order → 取消订单; the bot's answer to the tap."""
    await buyer.send("/start")
    await buyer.tap("我的订单")
    await buyer.tap(re.compile("^旗舰版 1年"))
    await buyer.tap("取消订单")
    answer = w.harness.telegram.callback_answer(w.harness.fed[-1].callback_query.id)
    assert (await w.harness.orders.get(order_id)).status.value == "cancelled"
    return answer["text"]


async def test_F6_cancelling_closes_the_wechat_payment_at_once(provider_world):
    w = await provider_world("wechat")
    h, fake = w.harness, w.wechat
    buyer = h.user()
    await flagship_submitted(w, buyer)
    order = await h.expect_order(buyer, "pending_payment")

    assert await cancel_in_chat(w, buyer, order.id) == "订单已取消。"

    assert fake.transaction(MCHID, order.id).trade_state == "CLOSED"  # at once, no scheduler tick
    assert ("POST", f"/v3/pay/transactions/out-trade-no/{order.id}/close", 204) in fake.requests
    with pytest.raises(ValueError):
        await fake.pay(MCHID, order.id)  # the QR code still on the buyer's screen pays nothing
    assert await h.app.redis.get(keys.web_payment(order.id)) is None
    assert await h.app.redis.zscore(keys.open_web_payments(), order.id) is None


async def test_F6_cancelling_closes_the_alipay_trade_at_once(provider_world):
    w = await provider_world("alipay")
    h, fake = w.harness, w.alipay
    buyer = h.user()
    sent, _ = await flagship_submitted(w, buyer)
    order = await h.expect_order(buyer, "pending_payment")
    async with aiohttp.ClientSession() as browser, browser.get(sent.location) as cashier:
        assert cashier.status == 200  # the buyer opened Alipay's cashier: the trade exists there

    await cancel_in_chat(w, buyer, order.id)

    assert fake.trade(APP_ID, order.id).trade_status == "TRADE_CLOSED"
    with pytest.raises(ValueError):
        await fake.pay(APP_ID, order.id)


async def test_F6_a_payment_made_before_the_cancel_reached_wechat_pay_is_kept_for_a_refund(provider_world):
    w = await provider_world("wechat")
    h, fake = w.harness, w.wechat
    buyer = h.user()
    agent = h.agent(name="Li")
    await flagship_submitted(w, buyer)
    order = await h.expect_order(buyer, "pending_payment")
    send = fake.notices.send
    fake.notices.send = lambda url, build: None  # the payment's notice is late
    tx = await fake.pay(MCHID, order.id)

    await cancel_in_chat(w, buyer, order.id)

    case_id = refund_case_id(f"wechat:{tx.transaction_id}")
    cancelled = await h.orders.get(order.id)
    assert cancelled.refund_pending and cancelled.status.value == "cancelled"
    alert = agent.expect(rf"待退款.*订单 {order.id}.*\n.*退款单 {case_id}")
    assert "🔁 退款" in str(alert["reply_markup"])
    kept = [t for t in buyer.bot_messages() if "无法完成" in t]
    assert len(kept) == 1 and order.id in kept[0], buyer.bot_messages()
    assert (await h.app.refunds.case(case_id)).state.status == "pending"

    fake.notices.send = send
    await fake.pay(MCHID, order.id)  # the late notice arrives after all
    await fake.notices.drain()
    assert len([t for t in buyer.bot_messages() if "无法完成" in t]) == 1  # told once
    assert len(await h.app.refunds.cases()) == 1  # one case for one payment


async def test_F6_when_wechat_pay_cannot_be_reached_at_the_cancel_the_next_tick_closes_it(provider_world):
    w = await provider_world("wechat")
    h, fake = w.harness, w.wechat
    buyer = h.user()
    await flagship_submitted(w, buyer)
    order = await h.expect_order(buyer, "pending_payment")
    fake.answer_key = new_rsa_key()  # answers signed by another key: nothing is taken as closed

    await cancel_in_chat(w, buyer, order.id)

    assert fake.transaction(MCHID, order.id).trade_state == "CLOSED"  # WeChat Pay did close it...
    assert await h.app.redis.get(keys.web_payment(order.id)) is not None  # ...but we could not know
    fake.answer_key = None
    fake.transaction(MCHID, order.id).trade_state = "NOTPAY"  # say the close was lost on the way
    await h.run_jobs()
    assert fake.transaction(MCHID, order.id).trade_state == "CLOSED"
    assert await h.app.redis.get(keys.web_payment(order.id)) is None
