"""Reconciliation against the local WeChat Pay and Alipay over HTTP: an order paid at WeChat Pay
whose notice never arrived, a refund made at the provider that the case does not know of, a
payment both sides agree on; and the time window."""
from __future__ import annotations

import asyncio
from datetime import timedelta

import aiohttp

from services.reconcile import Reconciler
from tests.web.test_provider_checkout import flagship_submitted
from tests.web.test_refunds import paid_after_cancelling

MCHID, APP_ID = "1900000109", "2021000122671234"


async def test_reconcile_asks_each_provider_both_ways_for_orders_and_refunds(provider_world, redis):
    w = await provider_world("wechat,alipay")
    h = w.harness
    lost_buyer, fine_buyer, refund_buyer = h.user(), h.user(), h.user()
    await flagship_submitted(w, lost_buyer, gateway="wechat")
    lost = await h.expect_order(lost_buyer, "pending_payment")
    send = w.wechat.notices.send
    w.wechat.notices.send = lambda url, build: None  # this notice is lost
    await w.wechat.pay(MCHID, lost.id)
    w.wechat.notices.send = send
    sent, _ = await flagship_submitted(w, fine_buyer, gateway="alipay")
    async with aiohttp.ClientSession() as browser, browser.get(sent.location):
        pass
    fine = await h.expect_order(fine_buyer, "pending_payment")
    await w.alipay.pay(APP_ID, fine.id)
    await w.alipay.notices.drain()
    await h.expect_order(fine_buyer, "paid")
    w.wechat.refund_delay = 0
    case_id = await _case_refunded_behind_our_back(w, refund_buyer)

    report = await Reconciler(redis, h.app.gateways, refunds=h.app.refunds).run()

    found = {(m.order_id, m.problem) for m in report.mismatches}
    refund_order = (await h.app.refunds.case(case_id)).order_id
    assert found == {(lost.id, "paid_at_gateway_not_in_redis"), (refund_order, "refunded_at_provider_not_here")}
    assert report.checked == 3 and report.refunds_checked == 1
    assert "gateway wechat,alipay" in report.summary()

    window = await Reconciler(redis, h.app.gateways, refunds=h.app.refunds,
                              since=h.clock.now() + timedelta(minutes=1)).run()
    assert window.checked == 0 and window.refunds_checked == 0 and window.consistent


async def _case_refunded_behind_our_back(w, buyer) -> str:
    """A refund case paid back at WeChat Pay by someone outside the bot (its merchant platform)."""
    case_id = await paid_after_cancelling(w, buyer, "wechat")
    case = await w.harness.app.refunds.case(case_id)
    w.wechat.notices.send = lambda url, build: None  # and its notice lost too
    await w.harness.app.gateway_named("wechat").refund(order_id=case.order_id, refund_id=case_id,
                                                        amount_fen=case.amount_fen, total_fen=case.amount_fen,
                                                        reason="by hand")
    for _ in range(1500):  # on the outcome, up to 30 s on a busy machine
        if w.wechat.refunds[(MCHID, case_id)].status == "SUCCESS":
            break
        await asyncio.sleep(0.02)
    return case_id
