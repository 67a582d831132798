"""Money in chat is taken only for what may be paid there, and only for what the enterprise can
take: R2 on every way to an invoice, R18 and R19 in the purchase, R20's hold on an approved
pre-checkout."""
from __future__ import annotations

import re

from services.catalog import Cart, quote
from services.orders import Channel, OrderKind, OrderStatus
from tests.flows.steps import ENTERPRISE_NAME, to_code, to_payment

FLAGSHIP_1Y = 5_980_000


async def web_order(h, buyer, edition: str = "flagship"):
    """An order made on the web checkout (or by an agent) for an edition the chat may not take."""
    q = quote(h.app.catalog, Cart(edition=edition, years=1, pack_chosen=True))
    order, _ = await h.orders.create(user_id=buyer.id, chat_id=buyer.id, cart_id=f"web-{buyer.id}", quote=q,
                                     channel=Channel.WEB, phone=buyer.phone, enterprise_name=ENTERPRISE_NAME)
    return order


# --- R2 on every way to pay ----------------------------------------------------------------------


async def test_R2_pay_from_my_orders_for_a_flagship_order_offers_the_web_checkout_not_an_invoice(esign_harness):
    buyer = esign_harness.user()
    await buyer.send("/start")
    order = await web_order(esign_harness, buyer)
    await buyer.tap("我的订单")
    await buyer.tap(re.compile("^旗舰版 1年"))

    screen = await buyer.tap("去支付")

    assert buyer.telegram.invoices(buyer.id) == []
    assert "网页端购买" in screen.buttons and "/checkout/" in screen.text
    assert "旗舰版" in screen.text and "¥59,800.00" in screen.text
    assert (await esign_harness.orders.get(order.id)).status is OrderStatus.PENDING


async def test_R2_a_forged_pre_checkout_for_an_order_the_chat_may_not_take_is_refused(esign_harness):
    buyer = esign_harness.user()
    await to_payment(esign_harness, buyer)  # an ordinary invoice to forge the query from
    flagship = await web_order(esign_harness, buyer)

    answer = await buyer.pre_checkout(invoice_payload=flagship.id, total_amount=FLAGSHIP_1Y)

    assert answer == {"ok": False, "error_message": "该订单无法在聊天中支付，请在「我的订单」中打开订单，通过网页端完成支付。"}
    assert (await esign_harness.orders.get(flagship.id)).held_until is None


# --- R20: an approved pre-checkout holds the order ------------------------------------------------


async def test_R20_a_payment_approved_at_29_59_is_honoured_at_30_02(esign_harness):
    buyer = esign_harness.user()
    order = await to_payment(esign_harness, buyer)
    esign_harness.advance(minutes=29, seconds=59)
    assert (await buyer.pre_checkout()) == {"ok": True}
    esign_harness.advance(seconds=3)
    await esign_harness.run_jobs()  # the expiry job runs meanwhile: a held order is not expired

    screen = await buyer.payment_arrives(charge_id="tg-late-but-approved")

    assert "支付成功" in screen.text and "款项将退回" not in screen.text
    paid = await esign_harness.orders.get(order.id)
    assert paid.status is OrderStatus.PAID and paid.charge_id == "tg-late-but-approved"
    assert await esign_harness.orders.refunds() == []


async def test_R20_the_hold_ends_and_a_payment_after_it_is_kept_for_a_refund(esign_harness):
    buyer = esign_harness.user()
    order = await to_payment(esign_harness, buyer)
    assert (await buyer.pre_checkout()) == {"ok": True}
    esign_harness.advance(minutes=esign_harness.app.catalog.payment_hold_minutes + 31)
    await esign_harness.run_jobs()
    assert (await esign_harness.orders.get(order.id)).status is OrderStatus.EXPIRED

    screen = await buyer.payment_arrives(charge_id="tg-too-late")

    assert "款项将退回" in screen.text
    assert [r["charge_id"] for r in await esign_harness.orders.refunds()] == ["tg-too-late"]


# --- R18, R19 in the purchase ---------------------------------------------------------------------


async def buy_advanced_as(esign_harness, buyer, *, years: int = 1):
    """The 高级版 purchase up to the phone's code (the enterprise name typed is the test's)."""
    await to_code(buyer, years)
    return await buyer.send(esign_harness.sms.last_code(buyer.phone))


async def test_R18_buying_the_edition_in_effect_is_a_renewal_delivered_at_once(esign_harness):
    buyer = esign_harness.user()
    ent = await esign_harness.enterprise_on(ENTERPRISE_NAME, "advanced", expires_in_days=100,
                                          members={buyer.phone: "super_admin"})

    screen = await buy_advanced_as(esign_harness, buyer)

    assert "本次购买为「版本续费」" in screen.text and "合计：¥4,800.00" in screen.text
    await buyer.tap("提交订单")
    screen = await buyer.pay()
    [order] = await esign_harness.orders_of(buyer)
    assert (order.kind, order.status) == (OrderKind.RENEWAL, OrderStatus.BOUND)
    renewed = await esign_harness.enterprises.get(ent.id)
    assert renewed.expires_at.year == ent.expires_at.year + 1  # added to the current term, not from today
    assert "支付成功，已发货" in screen.text


async def test_R18_a_lower_edition_than_the_one_in_effect_is_refused_before_payment(esign_harness):
    """The enterprise is on 专业版; 高级版 for it is refused at the confirmation, with the reason
    and what the buyer can do instead; nothing is ordered or charged."""
    buyer = esign_harness.user()
    await esign_harness.enterprise_on(ENTERPRISE_NAME, "professional", members={buyer.phone: "super_admin"})

    screen = await buy_advanced_as(esign_harness, buyer)

    assert "当前为专业版" in screen.text and "不支持版本降级" in screen.text and "不会产生任何扣款" in screen.text
    assert "提交订单" not in screen.buttons
    assert {"续费专业版", "购买咨询", "为其他企业购买（支付后绑定）"} <= set(screen.buttons)
    answer = await buyer.tap_stale(screen.message_id, "buy:submit")  # an old 提交订单 button
    assert await esign_harness.orders_of(buyer) == [] and buyer.telegram.invoices(buyer.id) == []
    assert answer is not None

    screen = await buyer.tap("为其他企业购买（支付后绑定）")  # for another enterprise, bound later
    assert "提交订单" in screen.buttons and "购买企业" not in screen.text


async def test_R18_a_member_without_billing_rights_cannot_renew_for_the_enterprise(esign_harness):
    buyer = esign_harness.user()
    admin = "+8613911112222"
    await esign_harness.enterprise_on(ENTERPRISE_NAME, "advanced", members={buyer.phone: "member", admin: "super_admin"})

    screen = await buy_advanced_as(esign_harness, buyer)

    assert "需由企业超级管理员或财务管理员操作" in screen.text and "+86*******2222" in screen.text
    assert "提交订单" not in screen.buttons


async def test_R19_with_several_verified_enterprises_the_buyer_says_which_one(esign_harness):
    buyer = esign_harness.user()
    first = await esign_harness.enterprise("广州第一科技有限公司", members={buyer.phone: "super_admin"})
    await esign_harness.enterprise("广州第二科技有限公司", members={buyer.phone: "billing_admin"})

    screen = await buy_advanced_as(esign_harness, buyer)  # the name typed is neither

    assert "本次为哪家企业购买" in screen.text
    assert {"为「广州第一科技有限公司」购买", "为「广州第二科技有限公司」购买",
            "为其他企业购买（支付后绑定）"} <= set(screen.buttons)
    screen = await buyer.tap("为「广州第一科技有限公司」购买")
    assert "购买企业：广州第一科技有限公司" in screen.text
    await buyer.tap("提交订单")
    await buyer.pay()
    [order] = await esign_harness.orders_of(buyer)
    assert order.status is OrderStatus.BOUND and order.enterprise_id == first.id
    assert order.enterprise_name == "广州第一科技有限公司"
