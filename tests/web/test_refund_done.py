"""A refund case paid back outside the bot (in the provider's dashboard, by transfer) is recorded
by an agent with /refund_done ID NOTE in the staff group: once, with who and the note; the buyer
is told once; the case leaves the open list, its 🔁 退款 button refunds nothing more, and
reconciliation does not count it a difference. Real HTTP to the local WeChat Pay."""
from __future__ import annotations

from services.reconcile import Reconciler
from tests.web.test_refunds import REFUND_PATH, paid_after_cancelling


def told_by_hand(buyer) -> list[str]:
    return [t for t in buyer.bot_messages() if "已为您退款" in t]


async def test_R21_an_agent_records_a_refund_made_by_hand_once_and_the_buyer_is_told(provider_world):
    w = await provider_world("wechat")
    h, fake = w.harness, w.wechat
    buyer = h.user()
    case_id = await paid_after_cancelling(w, buyer, "wechat")
    agent = h.agent(name="Li")

    assert "用法：/refund_done" in (await agent.command("/refund_done")).text
    assert "找不到退款单 rf_000000000000" in (await agent.command("/refund_done rf_000000000000 退了")).text
    assert "请写明退款方式" in (await agent.command(f"/refund_done {case_id}")).text
    assert (await h.app.refunds.case(case_id)).state.status == "pending"  # nothing recorded without a note

    done = await agent.command(f"/refund_done {case_id} 已在商户平台退款，单号 50300001")

    assert f"退款单 {case_id} 已记录为人工退款" in done.text and "单号 50300001" in done.text, done.text
    case = await h.app.refunds.case(case_id)
    assert case.state.status == "refunded" and case.state.provider_status == "by_hand"
    assert case.state.by == f"agent:{agent.id}" and case.state.note == "已在商户平台退款，单号 50300001"
    assert case.state.refunded_fen == 5_980_000 and case.state.refunded_at is not None
    assert len(told_by_hand(buyer)) == 1 and "¥59,800.00" in told_by_hand(buyer)[0]

    again = await agent.command(f"/refund_done {case_id} 又退了一次")
    assert "没有重复记录" in again.text and "单号 50300001" in again.text
    assert (await h.app.refunds.case(case_id)).state.note == "已在商户平台退款，单号 50300001"
    await agent.tap("🔁 退款")  # the alert's button, pressed afterwards
    assert not [r for r in fake.requests if r[:2] == ("POST", REFUND_PATH)]  # WeChat Pay never asked
    assert len(told_by_hand(buyer)) == 1
    assert "没有待处理的退款" in (await agent.command("/refunds")).text
    reconciler = Reconciler(h.app.redis, h.app.gateways, refunds=h.app.refunds)
    assert await reconciler.check_refund(await h.app.refunds.case(case_id)) is None


async def test_R21_a_refund_by_hand_is_refused_while_the_provider_is_refunding_it(provider_world):
    w = await provider_world("wechat")
    h, fake = w.harness, w.wechat
    case_id = await paid_after_cancelling(w, h.user(), "wechat")
    fake.refund_delay = 30  # WeChat Pay is still processing the refund
    agent = h.agent(name="Li")
    await agent.tap("🔁 退款")

    busy = await agent.command(f"/refund_done {case_id} 已转账")

    assert "正在经 微信支付 退款" in busy.text
    assert (await h.app.refunds.case(case_id)).state.provider_status == "processing"
