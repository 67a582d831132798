"""F6 我的订单: the list with status and total, the details, paying a pending order from its
details (a new invoice), cancelling it, and 立即绑定 on a paid one."""
import re

from services.orders import OrderStatus
from tests.flows.steps import ENTERPRISE_NAME, paid_order, to_payment, years_button


async def test_F6_empty_list_offers_to_buy(esign_harness):
    buyer = esign_harness.user()
    await buyer.send("/start")
    screen = await buyer.tap("我的订单")
    assert "暂无订单" in screen.text
    assert "购买套餐" in screen.buttons


async def test_F6_list_shows_each_order_with_status_and_total_newest_first(esign_harness):
    buyer = esign_harness.user()
    first = await paid_order(esign_harness, buyer)
    esign_harness.clock.advance(minutes=1)
    await buyer.send("/start")
    await buyer.tap("购买套餐")
    await buyer.tap("立即购买")
    await buyer.tap(re.compile("^高级版 · "))
    await buyer.tap(years_button(3))
    await buyer.tap("合同加量包 1万份 · +¥30,000.00")
    await buyer.tap("立即购买")  # name and phone are remembered
    await buyer.tap("提交订单")

    await buyer.tap("我的订单")
    screen = buyer.latest

    assert "我的订单" in screen.text
    rows = [b for b in screen.buttons if " · ¥" in b]
    assert rows == ["高级版 3年 + 合同加量包 1万份 · ¥44,400.00 · 待支付", "高级版 1年 · ¥4,800.00 · 已支付待绑定"]
    assert first.status is OrderStatus.PAID


async def test_F6_details_of_a_pending_order(esign_harness):
    buyer = esign_harness.user()
    order = await to_payment(esign_harness, buyer, years=2)
    await buyer.tap("我的订单")
    await buyer.tap(re.compile("^高级版 2年"))
    screen = buyer.latest

    assert f"订单详情 {order.id}" in screen.text
    assert "状态：待支付" in screen.text
    assert "高级版 2年：¥9,600.00" in screen.text
    assert "合计：¥9,600.00" in screen.text
    assert "合同份数：1,200 份" in screen.text
    assert f"企业名称：{ENTERPRISE_NAME}" in screen.text
    assert "下单时间：2026-01-05 10:00" in screen.text  # Beijing time
    assert "请在 2026-01-05 10:30 前完成支付。" in screen.text
    assert {"去支付", "取消订单", "返回"} <= set(screen.buttons)
    assert "立即绑定" not in screen.buttons


async def test_F6_pending_order_is_paid_from_its_details_with_a_new_invoice(esign_harness):
    buyer = esign_harness.user()
    order = await to_payment(esign_harness, buyer)
    await buyer.send("/start")  # leave the payment step
    await buyer.tap("我的订单")
    await buyer.tap(re.compile("^高级版 1年"))

    await buyer.tap("去支付")

    invoices = esign_harness.telegram.invoices(buyer.id)
    assert len(invoices) == 2
    assert invoices[-1]["payload"] == order.id and invoices[-1]["total_amount"] == 480_000
    assert await esign_harness.state_of(buyer) == "Buy:payment"
    screen = await buyer.pay()
    assert "支付成功" in screen.text
    assert (await esign_harness.orders.get(order.id)).status is OrderStatus.PAID
    # The first invoice can no longer be paid.
    answer = await buyer.pre_checkout(invoices[0])
    assert answer == {"ok": False, "error_message": "订单已支付，请勿重复支付。"}


async def test_F6_cancel_a_pending_order(esign_harness):
    buyer = esign_harness.user()
    order = await to_payment(esign_harness, buyer)
    await buyer.tap("我的订单")
    await buyer.tap(re.compile("^高级版 1年"))

    await buyer.tap("取消订单")

    answer = esign_harness.telegram.callback_answer(esign_harness.fed[-1].callback_query.id)
    assert answer["text"] == "订单已取消。"
    screen = buyer.latest
    assert "状态：已取消" in screen.text
    assert "去支付" not in screen.buttons and "取消订单" not in screen.buttons
    cancelled = await esign_harness.orders.get(order.id)
    assert cancelled.status is OrderStatus.CANCELLED
    await buyer.tap("返回")
    assert "高级版 1年 · ¥4,800.00 · 已取消" in buyer.latest.buttons
    # Its old buttons do nothing now.
    answer = await buyer.tap_stale(1, f"ord:pay:{order.id}")
    assert answer["text"] == "该订单当前无法支付：已取消"
    assert len(esign_harness.telegram.invoices(buyer.id)) == 1


async def test_F6_expired_order_is_listed_as_expired_and_cannot_be_paid_or_cancelled(esign_harness):
    buyer = esign_harness.user()
    order = await to_payment(esign_harness, buyer)
    esign_harness.clock.advance(minutes=31)

    await buyer.tap("我的订单")
    assert "高级版 1年 · ¥4,800.00 · 已过期" in buyer.latest.buttons
    await buyer.tap(re.compile("^高级版 1年"))
    assert "状态：已过期" in buyer.latest.text and "去支付" not in buyer.latest.buttons
    answer = await buyer.tap_stale(1, f"ord:cancel:{order.id}")
    assert answer["text"] == "该订单无法取消。"
    assert (await esign_harness.orders.get(order.id)).status is OrderStatus.EXPIRED


async def test_F6_paid_order_shows_bind_now_and_the_R13_reminder(esign_harness):
    buyer = esign_harness.user()
    order = await paid_order(esign_harness, buyer)
    await esign_harness.enterprise(ENTERPRISE_NAME, members={buyer.phone: "super_admin"})
    await buyer.tap("我的订单")
    screen = await buyer.tap(re.compile("^高级版 1年"))

    assert "状态：已支付待绑定" in screen.text
    assert "支付时间：2026-01-05 10:00" in screen.text
    assert "请及时认证并绑定企业使用" in screen.text
    assert "立即绑定" in screen.buttons and "去支付" not in screen.buttons
    screen = await buyer.tap("立即绑定")
    assert ENTERPRISE_NAME in screen.buttons
    await buyer.tap(ENTERPRISE_NAME)
    await buyer.tap("确认绑定")
    await buyer.send("/start")
    await buyer.tap("我的订单")
    screen = await buyer.tap(re.compile("^高级版 1年"))
    assert "状态：已绑定" in screen.text and f"已绑定企业：{ENTERPRISE_NAME}" in screen.text
    assert "立即绑定" not in screen.buttons
    assert (await esign_harness.orders.get(order.id)).status is OrderStatus.BOUND


async def test_F6_orders_of_another_user_are_not_listed(esign_harness):
    buyer, other = esign_harness.user(), esign_harness.user()
    await to_payment(esign_harness, other)
    await buyer.send("/start")
    screen = await buyer.tap("我的订单")
    assert "暂无订单" in screen.text

