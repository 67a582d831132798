"""版本续费 renewal (R4, F7): 1–3 more years of the edition in effect for the enterprise; paid in
chat and delivered at once (the expiry moves), or on the web for 专业版/旗舰版 and over the limit."""
import re
from datetime import UTC, datetime

from services.orders import Channel, OrderKind, OrderStatus
from tests.flows.catalogue_steps import ENTERPRISE, member_of, open_billing, tap_answer

UTC = UTC


async def test_R4_F7_renewing_advanced_in_chat_moves_the_expiry_and_adds_the_quota(esign_harness):
    h = esign_harness
    admin, ent = await member_of(h, "advanced", days=200, contracts=500)
    await open_billing(admin)

    screen = await admin.tap("版本续费")
    assert "当前版本：高级版（到期 2026-07-24）" in screen.text
    admin.expect_buttons(re.compile(r"^1年 · ¥4,800\.00 · 至 2027-07-24$"), re.compile(r"^3年 · ¥14,400\.00 · 至 2029-07-24$"))
    screen = await admin.tap(re.compile("^2年"))
    assert "高级版 2年：¥9,600.00" in screen.text and "到期时间：2026-07-24 → 2028-07-24" in screen.text
    assert "合同份数：1,200 份" in screen.text and "在聊天中支付" in screen.text
    await admin.tap("提交订单")
    invoice = admin.last_invoice()
    assert invoice["total_amount"] == 960_000 and invoice["currency"] == "CNY"

    screen = await admin.pay()

    assert "支付成功，已发货" in screen.text and "到期时间：2028-07-24" in screen.text and "合同余量：1,700 份" in screen.text
    assert "立即绑定" not in screen.buttons  # delivered at once: no binding step
    order = await h.expect_order(admin, "bound")
    assert (order.kind, order.enterprise_id, order.for_enterprise) == (OrderKind.RENEWAL, ent.id, True)
    after = await h.enterprises.get(ent.id)
    assert after.expires_at == datetime(2028, 7, 24, 2, 0, tzinfo=UTC) and after.contracts_left == 1_700
    await admin.tap("我的订单")
    admin.expect_buttons(re.compile(r"^版本续费 高级版 2年 · ¥9,600\.00 · 已绑定$"))


async def test_R2_R4_renewing_professional_cannot_be_paid_in_chat_the_order_waits_for_the_web(esign_harness):
    h = esign_harness
    admin, ent = await member_of(h, "professional", days=100)
    await open_billing(admin)
    await admin.tap("版本续费")
    screen = await admin.tap(re.compile("^1年"))
    assert "无法在聊天中支付" in screen.text

    screen = await admin.tap("提交订单")

    order = await h.expect_order(admin, "pending_payment")
    assert (order.channel, order.kind, order.total_fen) == (Channel.WEB, OrderKind.RENEWAL, 1_980_000)
    url = await h.app.checkout.link_for_order(order)
    assert url in screen.text  # the link to copy
    assert "专业版无法在聊天中支付。在本聊天中只能支付高级版订单" in screen.text
    admin.expect_buttons("网页端购买", "购买咨询")
    assert admin.telegram.invoices(admin.id) == []
    # Paid on the web: delivered to the enterprise at once.
    outcome = await h.orders.mark_paid(order.id, charge_id="web:1", amount_fen=1_980_000, currency="CNY", provider="web")
    assert outcome.status == "paid" and outcome.order.status is OrderStatus.BOUND
    assert (await h.enterprises.get(ent.id)).contracts_left == 500 + 3_000


async def test_R4_experience_has_nothing_to_renew_and_is_offered_the_upgrade(esign_harness):
    admin, _ = await member_of(esign_harness, "experience")
    await open_billing(admin)
    screen = await admin.tap("版本续费")
    assert "当前为体验版，无需续费" in screen.text
    screen = await admin.tap("版本升级")
    assert "体验版可升级至以下版本" in screen.text


async def test_R4_a_renewal_choice_from_an_old_message_is_refused_with_a_notice(esign_harness):
    admin, _ = await member_of(esign_harness, "advanced")
    await open_billing(admin)
    await admin.tap("版本续费")
    old = admin.screen.message_id
    _, button = admin.telegram.find_button(admin.id, re.compile("^1年"))
    await admin.send("/start")  # left the renewal
    answer = await admin.tap_stale(old, button["callback_data"])
    assert answer["text"] == "此按钮已失效，请使用最新的消息。"
    assert await esign_harness.orders_of(admin) == []


async def test_R4_double_tap_on_submit_makes_one_renewal_order(esign_harness):
    admin, _ = await member_of(esign_harness, "advanced")
    await open_billing(admin)
    await admin.tap("版本续费")
    await admin.tap(re.compile("^1年"))
    answers = await admin.double_tap("提交订单")
    assert all(a is not None for a in answers)
    assert len(await esign_harness.orders_of(admin)) == 1
    assert len(admin.telegram.invoices(admin.id)) == 1


async def test_R4_a_pending_renewal_is_paid_later_from_my_orders(esign_harness):
    h = esign_harness
    admin, ent = await member_of(h, "advanced", days=10)
    await open_billing(admin)
    await admin.tap("版本续费")
    await admin.tap(re.compile("^1年"))
    await admin.tap("提交订单")
    await admin.send("/start")
    await admin.tap("我的订单")
    await admin.tap(re.compile("^版本续费 高级版 1年"))
    admin.expect("类型：版本续费 高级版 1年")
    await admin.tap("去支付")
    assert admin.last_invoice()["title"].startswith("腾讯电子签 版本续费")
    screen = await admin.pay()
    assert "已发货至企业「深圳示例科技有限公司」" in screen.text
    assert (await h.enterprises.get(ent.id)).contracts_left == 1_100


async def test_R4_the_member_who_lost_billing_rights_cannot_submit(esign_harness):
    h = esign_harness
    admin, ent = await member_of(h, "advanced")
    await open_billing(admin)
    await admin.tap("版本续费")
    await admin.tap(re.compile("^1年"))
    await h.app.enterprises.add_member(ent.id, admin.phone, "member")
    answer = await tap_answer(admin, "提交订单")
    assert answer["show_alert"] is True and "超级管理员或计费管理员" in answer["text"]
    assert await h.orders_of(admin) == []
    admin.expect(f"🏢 {ENTERPRISE}")


async def test_R2_R4_a_renewal_over_the_chat_limit_goes_to_the_web_and_says_why(esign_harness):
    h = esign_harness
    h.app.catalog.chat_payment_limit_fen = 500_000  # ¥5,000: two years of 高级版 are over it
    admin, _ = await member_of(h, "advanced")
    await open_billing(admin)
    await admin.tap("版本续费")
    await admin.tap(re.compile("^2年"))
    screen = await admin.tap("提交订单")
    assert "订单金额超过聊天内单笔支付上限" in screen.text
    assert (await h.last_order(admin)).channel is Channel.WEB and admin.telegram.invoices(admin.id) == []
