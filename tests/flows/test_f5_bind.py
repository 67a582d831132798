"""F5 立即绑定 (R12, R13): a paid order is bound to a verified enterprise the buyer's phone has
joined, and delivered to it. Anything else is refused, and the order keeps waiting."""
import re

from services.orders import OrderStatus
from tests.flows.steps import ENTERPRISE_NAME, paid_order

OTHER = "广州另一家科技有限公司"
UNVERIFIED = "杭州未认证贸易有限公司"


async def test_F5_buyer_in_no_verified_enterprise_is_told_how_to_get_verified_and_binds_later(esign_harness):
    buyer = esign_harness.user()
    order = await paid_order(esign_harness, buyer)

    screen = await buyer.tap("立即绑定")

    assert "尚未加入任何已认证企业" in screen.text
    assert "企业认证" in screen.text and "添加为企业成员" in screen.text  # how to get there
    assert "订单将保留在「我的订单」中（已支付待绑定）" in screen.text
    assert "我的订单" in screen.buttons
    assert (await esign_harness.orders.get(order.id)).status is OrderStatus.PAID

    ent = await esign_harness.enterprise(ENTERPRISE_NAME, members={buyer.phone: "member"})
    await buyer.tap("我的订单")
    screen = await buyer.tap(re.compile("^高级版 1年 · ¥4,800.00 · 已支付待绑定"))
    assert "订单详情" in screen.text and "立即绑定" in screen.buttons
    screen = await buyer.tap("立即绑定")
    assert ENTERPRISE_NAME in screen.buttons
    await buyer.tap(ENTERPRISE_NAME)
    screen = await buyer.tap("确认绑定")

    assert "绑定成功" in screen.text and f"「{ENTERPRISE_NAME}」当前版本：高级版" in screen.text
    bound = await esign_harness.orders.get(order.id)
    assert bound.status is OrderStatus.BOUND and bound.enterprise_id == ent.id
    delivered = await esign_harness.enterprises.get(ent.id)
    assert delivered.edition == "advanced" and delivered.contracts_left == 600
    assert delivered.delivered_orders == [order.id]


async def test_F5_forged_bind_confirmation_for_an_enterprise_not_joined_is_refused(esign_harness):
    buyer = esign_harness.user()
    order = await paid_order(esign_harness, buyer)
    mine = await esign_harness.enterprise(ENTERPRISE_NAME, members={buyer.phone: "super_admin"})
    theirs = await esign_harness.enterprise(OTHER, members={"+8613911112222": "super_admin"})
    await buyer.tap("立即绑定")
    await buyer.tap(ENTERPRISE_NAME)  # now at the confirmation, for the enterprise joined

    answer = await buyer.tap_stale(buyer.screen.message_id, f"bok:{order.id}:{theirs.id}")

    assert answer["text"] == "您的手机号不是该企业的成员，无法绑定。" and answer["show_alert"] is True
    assert (await esign_harness.orders.get(order.id)).status is OrderStatus.PAID
    untouched = await esign_harness.enterprises.get(theirs.id)
    assert untouched.edition == "experience" and untouched.delivered_orders == []
    # The buyer can still bind to their own enterprise.
    await buyer.tap(ENTERPRISE_NAME)
    screen = await buyer.tap("确认绑定")
    assert "绑定成功" in screen.text
    assert (await esign_harness.orders.get(order.id)).enterprise_id == mine.id


async def test_F5_forged_enterprise_pick_is_refused_without_showing_that_enterprise(esign_harness):
    buyer = esign_harness.user()
    order = await paid_order(esign_harness, buyer)
    await esign_harness.enterprise(ENTERPRISE_NAME, members={buyer.phone: "super_admin"})
    theirs = await esign_harness.enterprise(OTHER, members={"+8613911112222": "super_admin"})
    await buyer.tap("立即绑定")

    answer = await buyer.tap_stale(buyer.screen.message_id, f"bnd:{order.id}:{theirs.id}")

    assert answer["text"] == "您的手机号不是该企业的成员，无法绑定。"
    assert await esign_harness.state_of(buyer) == "Bind:choose"
    assert all(OTHER not in m for m in buyer.bot_messages())  # its name is not revealed


async def test_F5_unverified_enterprise_is_listed_as_not_bindable(esign_harness):
    buyer = esign_harness.user()
    order = await paid_order(esign_harness, buyer)
    await esign_harness.enterprise(ENTERPRISE_NAME, members={buyer.phone: "super_admin"})
    unverified = await esign_harness.enterprise(UNVERIFIED, verified=False, members={buyer.phone: "super_admin"})

    screen = await buyer.tap("立即绑定")

    assert ENTERPRISE_NAME in screen.buttons
    assert UNVERIFIED not in screen.buttons
    assert f"以下企业尚未认证，认证后才能绑定：{UNVERIFIED}" in screen.text

    answer = await buyer.tap_stale(screen.message_id, f"bnd:{order.id}:{unverified.id}")
    assert answer["text"] == "该企业尚未认证，无法绑定。"
    await buyer.tap(ENTERPRISE_NAME)
    answer = await buyer.tap_stale(buyer.screen.message_id, f"bok:{order.id}:{unverified.id}")
    assert answer["text"] == "该企业尚未认证，无法绑定。"
    assert (await esign_harness.orders.get(order.id)).status is OrderStatus.PAID
    assert (await esign_harness.enterprises.get(unverified.id)).edition == "experience"


async def test_F5_only_unverified_enterprises_are_named_as_not_bindable(esign_harness):
    buyer = esign_harness.user()
    await esign_harness.enterprise(UNVERIFIED, verified=False, members={buyer.phone: "member"})
    await paid_order(esign_harness, buyer)

    screen = await buyer.tap("立即绑定")

    assert "尚未加入任何已认证企业" in screen.text
    assert f"以下企业尚未认证，认证后才能绑定：{UNVERIFIED}" in screen.text
    assert UNVERIFIED not in screen.buttons


async def test_F5_binding_a_lower_edition_over_a_higher_one_is_refused_with_a_refund_offered(esign_harness):
    """R19, R21: bought before the enterprise was known, a lower edition can be bound nowhere:
    the buyer is told why, not left with a toast, and can have the payment kept for a refund,
    which staff are alerted to."""
    buyer = esign_harness.user()
    order = await paid_order(esign_harness, buyer)
    ent = await esign_harness.enterprise_on(ENTERPRISE_NAME, "flagship", members={buyer.phone: "super_admin"})

    screen = await buyer.tap("立即绑定")

    assert "目前无法绑定" in screen.text
    assert f"{ENTERPRISE_NAME}：当前为旗舰版，高于所购的高级版（不支持降级）" in screen.text
    assert ENTERPRISE_NAME not in screen.buttons and "申请退款" in screen.buttons
    # A forged pick of it is refused all the same, and nothing changes.
    answer = await buyer.tap_stale(screen.message_id, f"bnd:{order.id}:{ent.id}")
    await buyer.tap_stale(screen.message_id, f"bok:{order.id}:{ent.id}")
    assert answer["text"]
    assert (await esign_harness.orders.get(order.id)).status is OrderStatus.PAID
    assert (await esign_harness.enterprises.get(ent.id)).delivered_orders == []

    screen = await buyer.tap("申请退款")

    assert "已为订单" in screen.text and "申请退款" in screen.text
    kept = await esign_harness.orders.get(order.id)
    assert kept.status is OrderStatus.CANCELLED and kept.refund_pending
    [refund] = await esign_harness.orders.refunds()
    assert refund["order_id"] == order.id and refund["reason"] == "downgrade_at_binding"
    assert refund["amount_fen"] == order.total_fen and refund["provider"] == "telegram"
    staff = esign_harness.telegram.messages(esign_harness.settings.staff_chat_id, from_bot=True)
    assert [m["text"] for m in staff if order.id in m.get("text", "") and "待退款" in m["text"]]
    assert (await esign_harness.enterprises.get(ent.id)).edition == "flagship"
    screen = await buyer.tap("我的订单")
    assert "已取消（待退款）" in " ".join(screen.buttons)


async def test_F5_bind_now_on_a_bound_order_says_it_is_bound(esign_harness):
    buyer = esign_harness.user()
    order = await paid_order(esign_harness, buyer)
    await esign_harness.enterprise(ENTERPRISE_NAME, members={buyer.phone: "super_admin"})
    await buyer.tap("立即绑定")
    await buyer.tap(ENTERPRISE_NAME)
    await buyer.tap("确认绑定")

    answer = await buyer.tap_stale(1, f"ord:bind:{order.id}")

    assert answer["text"] == "该订单已绑定企业，无需再次绑定。"
    assert f"已绑定企业：{ENTERPRISE_NAME}" in buyer.latest.text


async def test_F5_bind_now_on_an_unpaid_order_is_refused(esign_harness):
    from tests.flows.steps import to_payment

    buyer = esign_harness.user()
    order = await to_payment(esign_harness, buyer)
    answer = await buyer.tap_stale(1, f"ord:bind:{order.id}")
    assert answer["text"] == "该订单尚未支付或已失效，无法绑定。"
    assert (await esign_harness.orders.get(order.id)).status is OrderStatus.PENDING


async def test_F5_binding_after_the_term_has_ended_says_so_and_delivers_nothing(esign_harness):
    """R13: the term runs from the purchase; 400 days after a 1-year order there is nothing left
    to deliver, so nothing is delivered as if it were active."""
    buyer = esign_harness.user()
    order = await paid_order(esign_harness, buyer)
    ent = await esign_harness.enterprise(ENTERPRISE_NAME, members={buyer.phone: "super_admin"})
    esign_harness.advance(days=400)

    screen = await buyer.tap("立即绑定")  # the button of the paid message, long ago

    assert "服务期（2026-01-05 至 2027-01-05）已结束" in screen.text and "无需绑定" in screen.text
    assert ENTERPRISE_NAME not in screen.buttons
    answer = await buyer.tap_stale(screen.message_id, f"bok:{order.id}:{ent.id}")  # forged: refused too
    assert answer["text"]
    untouched = await esign_harness.enterprises.get(ent.id)
    assert (untouched.edition, untouched.contracts_left, untouched.delivered_orders) == ("experience", 0, [])
    await buyer.tap("我的订单")
    screen = await buyer.tap(re.compile("^高级版 1年"))
    assert "服务期已于 2027-01-05 结束" in screen.text and "立即绑定" not in screen.buttons
