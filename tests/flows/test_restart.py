"""DESIGN, Shape: a user can leave at any step and find the flow where it was after a restart.
`restart()` builds a new dispatcher and new services on the same Redis (a new process)."""
import re

from services.orders import OrderStatus
from tests.flows.steps import (
    ENTERPRISE_NAME,
    NO_PACK,
    paid_order,
    to_code,
    to_confirmation,
    to_payment,
    to_years,
    years_button,
)


async def test_restart_at_the_years_step_continues_with_the_cart(esign_harness):
    buyer = esign_harness.user()
    await to_years(buyer)

    esign_harness.restart()
    screen = await buyer.tap(years_button(2))
    assert "高级版 2年\n是否加购合同加量包" in screen.text
    screen = await buyer.tap(NO_PACK)
    assert "产品选购" in screen.text
    screen = await buyer.tap("立即购买")
    assert "企业名称" in screen.text


async def test_restart_at_the_years_step_then_unexpected_text_reshows_the_years(esign_harness):
    buyer = esign_harness.user()
    await to_years(buyer)
    esign_harness.restart()
    screen = await buyer.send("你好")
    assert "请选择购买时长" in screen.text and "高级版" in screen.text
    assert await esign_harness.state_of(buyer) == "Buy:years"


async def test_restart_at_the_code_step_accepts_the_code_sent_before(esign_harness):
    buyer = esign_harness.user()
    await to_code(buyer)
    code = esign_harness.sms.last_code(buyer.phone)

    esign_harness.restart()
    screen = await buyer.send(code)
    assert "订单确认" in screen.text
    assert f"企业名称：{ENTERPRISE_NAME}" in screen.text
    assert "合计：¥4,800.00" in screen.text


async def test_restart_at_the_code_step_keeps_the_cool_down_and_the_tries(esign_harness):
    buyer = esign_harness.user()
    await to_code(buyer)
    code = esign_harness.sms.last_code(buyer.phone)
    await buyer.send(f"{(int(code) + 1) % 1_000_000:06d}")

    esign_harness.restart()
    screen = await buyer.tap("重新发送验证码")
    assert "60 秒后才能重新发送" in screen.text
    screen = await buyer.send(f"{(int(code) + 1) % 1_000_000:06d}")
    assert "还可尝试 3 次" in screen.text


async def test_restart_at_the_confirmation_submits_one_order(esign_harness):
    buyer = esign_harness.user()
    await to_confirmation(esign_harness, buyer, years=3)

    esign_harness.restart()
    await buyer.tap("提交订单")
    [order] = await esign_harness.orders.list_for_user(buyer.id)
    assert order.total_fen == 1_440_000 and order.years == 3
    assert buyer.last_invoice()["total_amount"] == 1_440_000


async def test_restart_while_awaiting_payment_the_payment_still_lands(esign_harness):
    buyer = esign_harness.user()
    order = await to_payment(esign_harness, buyer)
    esign_harness.restart()
    screen = await buyer.pay()
    assert "支付成功" in screen.text
    assert (await esign_harness.orders.get(order.id)).status is OrderStatus.PAID


async def test_restart_at_the_bind_confirmation_binds(esign_harness):
    buyer = esign_harness.user()
    await paid_order(esign_harness, buyer)
    ent = await esign_harness.enterprise(ENTERPRISE_NAME, members={buyer.phone: "billing_admin"})
    await buyer.tap("立即绑定")
    await buyer.tap(ENTERPRISE_NAME)

    esign_harness.restart()
    screen = await buyer.tap("确认绑定")
    assert "绑定成功" in screen.text
    assert (await esign_harness.enterprises.get(ent.id)).edition == "advanced"


async def test_restart_in_my_orders_opens_the_details(esign_harness):
    buyer = esign_harness.user()
    await to_payment(esign_harness, buyer)
    await buyer.tap("我的订单")
    esign_harness.restart()
    await buyer.tap(re.compile("^高级版 1年"))
    assert "订单详情" in buyer.latest.text and "待支付" in buyer.latest.text
