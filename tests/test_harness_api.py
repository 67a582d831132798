"""The testing API, one feature a test (docs/testing.md, "Writing a Python test"). Each test reads
like the conversation it checks; `esign_harness` comes from the package's pytest plugin."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest
from esign_devkit.testing.harness import StepFailed

from services.orders import OrderStatus

DEMO_PHONE = "+8613800138000"
ADVANCED = re.compile(r"^高级版 · ")


async def buy_until_confirmation(buyer, *, years: int = 1) -> None:
    await buyer.send("/start")
    await buyer.tap("购买套餐")
    await buyer.tap("立即购买")
    await buyer.tap(ADVANCED)
    await buyer.tap(re.compile(rf"^{years}年"))
    await buyer.tap("不加购合同加量包")
    await buyer.tap("立即购买")
    await buyer.send("深圳示例科技有限公司")
    await buyer.share_contact()
    await buyer.send_code()


async def buy_until_invoice(harness, buyer, *, years: int = 1) -> None:
    await buy_until_confirmation(buyer, years=years)
    await buyer.tap("提交订单")


async def test_send_and_read_the_screen(esign_harness):
    buyer = esign_harness.user(lang="zh")
    screen = await buyer.send("/start")
    assert screen.text == buyer.screen.text  # send() returns the screen; buyer.screen reads it again
    assert "欢迎使用腾讯电子签" in screen.text
    assert screen.buttons == ["购买套餐", "了解企业版服务", "费用管理", "申请试用", "我的订单", "联系客服",
                              "退费说明", "开票说明", "常见问题"]  # F1, R9, R16, R5
    assert screen.keyboard == []


async def test_tap_by_label_or_by_regex(esign_harness):
    buyer = esign_harness.user()
    await buyer.send("/start")
    await buyer.tap("购买套餐")  # the exact label
    await buyer.tap("立即购买")
    screen = await buyer.tap(re.compile(r"^高级版"))  # a regex, for labels with prices in them
    assert "请选择购买时长" in screen.text


async def test_expect_and_expect_buttons(esign_harness):
    buyer = esign_harness.user()
    await buyer.send("/start")
    buyer.expect(r"^👋 欢迎使用腾讯电子签$")  # a regex; ^ and $ anchor one line
    buyer.expect_buttons("购买套餐", re.compile("订单$"))
    screen = buyer.expect("欢迎")
    assert screen.buttons[0] == "购买套餐"


async def test_a_failing_expectation_shows_the_screen_and_what_was_expected(esign_harness):
    buyer = esign_harness.user()
    await buyer.send("/start")
    with pytest.raises(StepFailed) as failed:
        buyer.expect("支付成功")
    message = str(failed.value)
    assert message.startswith("expected text matching /支付成功/\nfound on the screen:\n")
    assert "    👋 欢迎使用腾讯电子签" in message and "[购买套餐]" in message
    with pytest.raises(StepFailed, match=r"expected button '立即绑定'\nfound on the screen:"):
        buyer.expect_buttons("购买套餐", "立即绑定")
    with pytest.raises(StepFailed, match=r"no button '立即绑定' on the screen:\n👋 欢迎使用腾讯电子签"):
        await buyer.tap("立即绑定")


async def test_share_contact_and_the_sms_outbox(esign_harness):
    buyer = esign_harness.user(phone="+86 139 1234 5678")
    await buyer.send("/start")
    await buyer.tap("购买套餐")
    await buyer.tap("立即购买")
    await buyer.tap(ADVANCED)
    await buyer.tap(re.compile("^1年"))
    await buyer.tap("不加购合同加量包")
    await buyer.tap("立即购买")
    screen = await buyer.send("深圳示例科技有限公司")
    assert "📱 分享我的手机号" in screen.keyboard  # the reply keyboard
    screen = await buyer.share_contact()  # their own phone, as the 📱 button sends it
    assert "+86*******5678" in screen.text
    assert esign_harness.sms.count("13912345678") == 1  # the outbox takes the phone in any form
    code = esign_harness.sms.last_code(buyer.phone)
    assert re.fullmatch(r"\d{6}", code)
    screen = await buyer.send_code()  # the same as buyer.send(code)
    assert "订单确认" in screen.text


async def test_share_someone_elses_contact(esign_harness):
    buyer = esign_harness.user()
    await buyer.send("/start")
    for label in ("购买套餐", "立即购买", ADVANCED, re.compile("^1年"), "不加购合同加量包", "立即购买"):
        await buyer.tap(label)
    await buyer.send("深圳示例科技有限公司")
    screen = await buyer.share_contact("+8613700000000", own=False)
    assert "请分享您本人的手机号" in screen.text


async def test_pay_then_read_the_order_book(esign_harness):
    buyer = esign_harness.user(phone=DEMO_PHONE)
    await buy_until_invoice(esign_harness, buyer, years=2)
    invoice = buyer.last_invoice()
    assert (invoice["currency"], invoice["total_amount"]) == ("CNY", 960_000)
    order = await esign_harness.expect_order(buyer, "pending_payment")
    screen = await buyer.pay()  # pre-checkout, then the payment, as Telegram does
    buyer.expect("支付成功")
    assert screen.buttons[0] == "立即绑定"
    paid = await esign_harness.last_order(buyer)
    assert (paid.id, paid.status, paid.total_fen) == (order.id, OrderStatus.PAID, 960_000)
    assert [o.id for o in await esign_harness.orders_of(buyer)] == [order.id]
    with pytest.raises(StepFailed, match=r"expected the newest order to be bound, found .* paid"):
        await esign_harness.expect_order(buyer, OrderStatus.BOUND)


async def test_a_repeated_payment_notice_pays_once(esign_harness):
    buyer = esign_harness.user()
    await buy_until_invoice(esign_harness, buyer)
    answer = await buyer.pre_checkout()
    assert answer == {"ok": True}
    await buyer.payment_arrives(charge_id="tg-charge-1")
    before = len(buyer.bot_messages())
    await buyer.payment_arrives(charge_id="tg-charge-1")  # Telegram delivers it again
    assert len(buyer.bot_messages()) == before
    order = await esign_harness.last_order(buyer)
    assert order.status is OrderStatus.PAID and order.charge_id == "tg-charge-1"


async def test_seed_enterprises_and_bind(esign_harness):
    buyer = esign_harness.user(phone=DEMO_PHONE)
    await buy_until_invoice(esign_harness, buyer)
    await buyer.pay()
    # Verified after the purchase (R11–R13): now the order can be bound.
    ent = await esign_harness.enterprise("深圳示例科技有限公司", members={DEMO_PHONE: "super_admin"})
    await esign_harness.enterprise("未认证的公司", verified=False, members={DEMO_PHONE: "member"})
    await buyer.tap("立即绑定")
    buyer.expect("以下企业尚未认证，认证后才能绑定：未认证的公司")
    await buyer.tap("深圳示例科技有限公司")
    await buyer.tap("确认绑定")
    buyer.expect("绑定成功")
    delivered = await esign_harness.enterprises.get(ent.id)
    assert (delivered.edition, delivered.contracts_left) == ("advanced", 600)
    await esign_harness.expect_order(buyer, "bound")


async def test_several_users_at_once(esign_harness):
    alice = esign_harness.user(lang="zh", name="Alice")
    bob = esign_harness.user(lang="en", name="Bob")
    await alice.send("/start")
    await bob.send("/start")
    await alice.tap("购买套餐")
    assert "Welcome to Tencent E-Sign" in bob.screen.text  # each has their own chat and screen
    await bob.tap("My orders")
    bob.expect("No orders yet")
    alice.expect("购买套餐")
    assert alice.id != bob.id and alice.phone != bob.phone


async def test_the_clock(esign_harness):
    buyer = esign_harness.user()
    await buy_until_invoice(esign_harness, buyer)
    start = esign_harness.clock.now()
    assert esign_harness.advance(minutes=31) - start == timedelta(minutes=31)
    await esign_harness.expect_order(buyer, "expired")  # unpaid past its 30 minutes
    answer = await buyer.pre_checkout()
    assert answer["ok"] is False and answer["error_message"] == "订单已过期，请重新下单。"
    esign_harness.advance(days=1)
    assert (esign_harness.clock.now() - start).days == 1


async def test_a_stale_button_gets_a_notice(esign_harness):
    buyer = esign_harness.user()
    await buyer.send("/start")
    await buyer.tap("购买套餐")
    old = buyer.screen.message_id
    await buyer.tap("立即购买")
    answer = await buyer.tap_stale(old, "nav:nowhere")  # a forged or outdated callback
    assert "此按钮已失效" in answer["text"]


async def test_a_restart_keeps_the_conversation(esign_harness):
    buyer = esign_harness.user()
    await buyer.send("/start")
    await buyer.tap("购买套餐")
    await buyer.tap("立即购买")
    esign_harness.restart()  # a new process on the same Redis
    screen = await buyer.tap(ADVANCED)
    assert "请选择购买时长" in screen.text


async def test_a_double_tap_on_submit_makes_one_order(esign_harness):
    buyer = esign_harness.user()
    await buy_until_confirmation(buyer)
    answers = await buyer.double_tap("提交订单")  # two presses in flight at once
    assert all(answer is not None for answer in answers)  # each one is answered
    assert len(await esign_harness.orders_of(buyer)) == 1
    assert len(esign_harness.telegram.calls_of("sendInvoice")) == 1
    await buyer.pay()
    await esign_harness.expect_order(buyer, "paid")
