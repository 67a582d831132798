"""The error guard (DESIGN, middlewares): whatever fails, the user gets an answer, and the
update is not half-applied — the conversation stays at the step it was, nothing is written,
and the same input works once the fault is gone."""
import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from bot.errors import PaymentNotStored
from services.orders import OrderStatus
from tests.flows.steps import ENTERPRISE_NAME, button_data, paid_order, to_code, to_confirmation, to_payment

APOLOGY = "抱歉，处理您的请求时出现问题，请稍后重试。您的进度已保留。"
BUSY = "服务繁忙，请稍后再试。您的进度已保留。"
PAYMENT_PENDING = "付款已收到，正在确认，确认后会立即通知您，请勿重复付款。"


def failing(exc: Exception):
    async def fail(*args, **kwargs):
        raise exc
    return fail


async def snapshot(harness, buyer):
    return (await harness.state_of(buyer), await harness.session_of(buyer),
            await harness.orders.list_for_user(buyer.id))


async def test_handler_error_on_submit_apologises_and_keeps_the_confirmation(esign_harness, monkeypatch):
    buyer = esign_harness.user()
    await to_confirmation(esign_harness, buyer)
    before = await snapshot(esign_harness, buyer)
    message_id, data = button_data(buyer, "提交订单")
    monkeypatch.setattr(esign_harness.app.orders, "create", failing(RuntimeError("boom")))

    answer = await buyer.tap_stale(message_id, data)

    assert answer == {"text": APOLOGY, "show_alert": True}
    assert await snapshot(esign_harness, buyer) == before
    assert await esign_harness.state_of(buyer) == "Buy:confirm"
    assert "订单确认" in buyer.screen.text and "提交订单" in buyer.screen.buttons
    assert esign_harness.telegram.calls_of("sendInvoice") == []

    monkeypatch.undo()
    await buyer.tap("提交订单")
    [order] = await esign_harness.orders.list_for_user(buyer.id)
    assert buyer.last_invoice()["payload"] == order.id
    assert "支付成功" in (await buyer.pay()).text


async def test_redis_going_away_on_submit_says_busy_and_writes_nothing(esign_harness, monkeypatch):
    buyer = esign_harness.user()
    await to_confirmation(esign_harness, buyer)
    before = await snapshot(esign_harness, buyer)
    keys_before = sorted(await esign_harness.redis.keys("*"))
    monkeypatch.setattr(esign_harness.app.orders, "create", failing(RedisConnectionError("Connection refused")))

    message_id, data = button_data(buyer, "提交订单")
    answer = await buyer.tap_stale(message_id, data)

    assert answer == {"text": BUSY, "show_alert": True}
    assert await snapshot(esign_harness, buyer) == before
    # Not even the update's dedup mark is left: Telegram's redelivery may try again.
    assert sorted(await esign_harness.redis.keys("*")) == keys_before
    assert esign_harness.telegram.calls_of("sendInvoice") == []
    monkeypatch.undo()
    await buyer.tap("提交订单")
    assert len(await esign_harness.orders.list_for_user(buyer.id)) == 1


async def test_redis_going_away_at_the_code_step_says_busy_and_the_code_still_works(esign_harness, monkeypatch):
    buyer = esign_harness.user()
    await to_code(buyer)
    before = await snapshot(esign_harness, buyer)
    code = esign_harness.sms.last_code(buyer.phone)
    monkeypatch.setattr(esign_harness.app.codes, "verify", failing(RedisConnectionError("gone")))

    screen = await buyer.send(code)

    assert screen.text == BUSY
    assert await snapshot(esign_harness, buyer) == before
    monkeypatch.undo()
    screen = await buyer.send(code)
    assert "订单确认" in screen.text


async def test_redis_going_away_at_pre_checkout_refuses_with_busy(esign_harness, monkeypatch):
    buyer = esign_harness.user()
    order = await to_payment(esign_harness, buyer)
    monkeypatch.setattr(esign_harness.app.orders, "hold_for_payment", failing(RedisConnectionError("gone")))

    answer = await buyer.pre_checkout()

    assert answer == {"ok": False, "error_message": BUSY}
    monkeypatch.undo()
    assert (await buyer.pre_checkout())["ok"] is True
    assert (await esign_harness.orders.get(order.id)).status is OrderStatus.PENDING


async def test_payment_notice_that_fails_on_redis_is_not_confirmed_and_applied_when_delivered_again(
        esign_harness, monkeypatch):
    """The money is taken: the buyer is told it is being confirmed (once, however many tries),
    and the update is not taken as handled (PaymentNotStored: the transport does not confirm it)."""
    buyer = esign_harness.user()
    order = await to_payment(esign_harness, buyer)
    assert (await buyer.pre_checkout())["ok"]
    update = esign_harness.telegram.successful_payment_update(buyer.fake, buyer.last_invoice()["message_id"])
    monkeypatch.setattr(esign_harness.app.orders, "mark_paid", failing(RedisConnectionError("gone")))

    for _ in range(3):  # Telegram's redeliveries while Redis is away
        with pytest.raises(PaymentNotStored):
            await esign_harness.feed(update)

    assert buyer.screen.text == PAYMENT_PENDING
    assert [m.get("text") for m in esign_harness.telegram.messages(buyer.id, from_bot=True)].count(PAYMENT_PENDING) == 1
    assert (await esign_harness.orders.get(order.id)).status is OrderStatus.PENDING
    monkeypatch.undo()
    await esign_harness.feed(update)  # Telegram's redelivery of the same update
    assert "支付成功" in buyer.screen.text
    assert (await esign_harness.orders.get(order.id)).status is OrderStatus.PAID


async def test_a_payment_that_fails_for_another_reason_is_answered_and_taken(esign_harness, monkeypatch):
    buyer = esign_harness.user()
    await to_payment(esign_harness, buyer)
    assert (await buyer.pre_checkout())["ok"]
    update = esign_harness.telegram.successful_payment_update(buyer.fake, buyer.last_invoice()["message_id"])
    monkeypatch.setattr(esign_harness.app.orders, "mark_paid", failing(RuntimeError("bug")))

    await esign_harness.feed(update)  # no PaymentNotStored: redelivering it would fail the same way

    assert buyer.screen.text == APOLOGY


async def test_error_after_the_step_changed_rolls_the_step_back(esign_harness, monkeypatch):
    """立即绑定 sets the bind step, then fails while drawing it: the step is not kept."""
    buyer = esign_harness.user()
    await paid_order(esign_harness, buyer)
    await esign_harness.enterprise(ENTERPRISE_NAME, members={buyer.phone: "super_admin"})
    before = await snapshot(esign_harness, buyer)
    monkeypatch.setattr(esign_harness.app.enterprises, "for_phone", failing(RuntimeError("directory down")))

    message_id, data = button_data(buyer, "立即绑定")
    answer = await buyer.tap_stale(message_id, data)

    assert answer == {"text": APOLOGY, "show_alert": True}
    assert await snapshot(esign_harness, buyer) == before
    monkeypatch.undo()
    await buyer.tap("立即绑定")
    assert ENTERPRISE_NAME in buyer.screen.buttons


async def test_invoice_that_telegram_refuses_is_sent_again_on_the_next_submit(esign_harness):
    """The order is created, then sendInvoice fails: the next 提交订单 (same cart) sends the
    invoice for that same order instead of a second order, or none at all."""
    buyer = esign_harness.user()
    await to_confirmation(esign_harness, buyer)
    esign_harness.telegram.fail_next("sendInvoice", 500)
    message_id, data = button_data(buyer, "提交订单")

    answer = await buyer.tap_stale(message_id, data)

    assert answer == {"text": APOLOGY, "show_alert": True}
    assert await esign_harness.state_of(buyer) == "Buy:confirm"
    assert "提交订单" in buyer.latest.buttons  # the screen still matches the step
    await buyer.tap("提交订单")
    orders = await esign_harness.orders.list_for_user(buyer.id)
    assert len(orders) == 1
    assert len(esign_harness.telegram.invoices(buyer.id)) == 1
    assert buyer.last_invoice()["payload"] == orders[0].id
    assert await esign_harness.state_of(buyer) == "Buy:payment"
    assert "支付成功" in (await buyer.pay()).text


@pytest.mark.parametrize("lang, text", [("en", "Sorry, something went wrong")])
async def test_apology_is_in_the_users_language(esign_harness, monkeypatch, lang, text):
    buyer = esign_harness.user(lang=lang)
    await buyer.send("/start")
    monkeypatch.setattr(esign_harness.app.orders, "list_for_user", failing(RuntimeError("boom")))
    message_id, data = button_data(buyer, "My orders")
    answer = await buyer.tap_stale(message_id, data)
    assert answer["text"].startswith(text) and answer["show_alert"] is True
    assert await esign_harness.state_of(buyer) is None


async def test_failed_invoice_then_the_order_expires_the_next_submit_makes_a_fresh_order(esign_harness):
    buyer = esign_harness.user()
    await to_confirmation(esign_harness, buyer)
    esign_harness.telegram.fail_next("sendInvoice", 500)
    message_id, data = button_data(buyer, "提交订单")
    await buyer.tap_stale(message_id, data)
    [stale] = await esign_harness.orders.list_for_user(buyer.id)
    esign_harness.clock.advance(minutes=31)

    await buyer.tap("提交订单")

    orders = await esign_harness.orders.list_for_user(buyer.id)
    assert len(orders) == 2
    fresh = next(o for o in orders if o.id != stale.id)
    assert fresh.status is OrderStatus.PENDING
    assert buyer.last_invoice()["payload"] == fresh.id
    assert (await buyer.pre_checkout())["ok"] is True


async def test_redis_down_for_the_whole_update_still_answers_busy(esign_harness, monkeypatch):
    """Redis refusing every command (the per-user lock and the FSM storage included)."""
    buyer = esign_harness.user()
    await to_confirmation(esign_harness, buyer)
    message_id, data = button_data(buyer, "提交订单")
    monkeypatch.setattr(esign_harness.redis, "execute_command", failing(RedisConnectionError("refused")))

    answer = await buyer.tap_stale(message_id, data)
    screen = await buyer.send("13800138000")

    assert answer == {"text": BUSY, "show_alert": True}
    assert screen.text == BUSY
    monkeypatch.undo()
    assert await esign_harness.orders.list_for_user(buyer.id) == []
    assert await esign_harness.state_of(buyer) == "Buy:confirm"
    await buyer.tap("提交订单")
    assert len(await esign_harness.orders.list_for_user(buyer.id)) == 1
