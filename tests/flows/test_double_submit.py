"""F2 提交订单 pressed twice (a double tap, or a second tap on the old message): one order,
one invoice; the second press only gets a short callback answer."""
import asyncio

from tests.flows.steps import button_data, to_confirmation


async def test_F2_double_tap_on_submit_makes_one_order_and_one_invoice(esign_harness):
    buyer = esign_harness.user()
    await to_confirmation(esign_harness, buyer)
    message_id, data = button_data(buyer, "提交订单")

    await buyer.tap("提交订单")
    answer = await buyer.tap_stale(message_id, data)

    orders = await esign_harness.orders.list_for_user(buyer.id)
    assert len(orders) == 1
    assert len(esign_harness.telegram.calls_of("sendInvoice")) == 1
    assert answer is not None and answer.get("text")  # a short notice, not silence
    assert len(answer["text"]) <= 200  # Telegram's limit for callback answers
    assert "失效" in answer["text"] or "请勿重复提交" in answer["text"]
    assert await esign_harness.state_of(buyer) == "Buy:payment"
    screen = await buyer.pay()
    assert "支付成功" in screen.text


async def test_F2_two_concurrent_submits_make_one_order_and_one_invoice(esign_harness):
    """Both presses in flight at once: the per-user lock serialises them."""
    buyer = esign_harness.user()
    await to_confirmation(esign_harness, buyer)
    message_id, data = button_data(buyer, "提交订单")
    first = esign_harness.telegram.callback_update(buyer.fake, message_id, data)
    second = esign_harness.telegram.callback_update(buyer.fake, message_id, data)

    await asyncio.gather(esign_harness.feed(first), esign_harness.feed(second))

    assert len(await esign_harness.orders.list_for_user(buyer.id)) == 1
    assert len(esign_harness.telegram.calls_of("sendInvoice")) == 1
    answers = [esign_harness.telegram.callback_answer(u.callback_query.id) for u in (first, second)]
    assert all(a is not None for a in answers)
    assert sum(1 for a in answers if a.get("text")) == 1  # only the second press gets a notice


async def test_F2_submit_after_paying_does_not_make_a_second_order(esign_harness):
    buyer = esign_harness.user()
    await to_confirmation(esign_harness, buyer)
    message_id, data = button_data(buyer, "提交订单")
    await buyer.tap("提交订单")
    await buyer.pay()

    answer = await buyer.tap_stale(message_id, data)

    assert answer and answer.get("text")
    assert len(await esign_harness.orders.list_for_user(buyer.id)) == 1
    assert len(esign_harness.telegram.calls_of("sendInvoice")) == 1
