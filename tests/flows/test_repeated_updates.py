"""DESIGN, middlewares: Telegram may deliver an update twice; each update_id is handled once."""
from services.orders import OrderStatus
from tests.flows.steps import ENTERPRISE_NAME, button_data, to_confirmation, to_enterprise_name, to_payment


async def test_repeated_update_id_of_a_message_is_handled_once(esign_harness):
    buyer = esign_harness.user()
    update = esign_harness.telegram.message_update(buyer.fake, "/start")

    await esign_harness.feed(update)
    await esign_harness.feed(update)

    assert len(esign_harness.telegram.calls_of("sendMessage")) == 1


async def test_repeated_enterprise_name_moves_on_once(esign_harness):
    buyer = esign_harness.user()
    await to_enterprise_name(buyer)
    update = esign_harness.telegram.message_update(buyer.fake, ENTERPRISE_NAME)

    await esign_harness.feed(update)
    sent = len(esign_harness.telegram.calls)
    await esign_harness.feed(update)

    assert len(esign_harness.telegram.calls) == sent  # not a word more
    assert await esign_harness.state_of(buyer) == "Phone:number"


async def test_repeated_submit_callback_makes_one_order(esign_harness):
    buyer = esign_harness.user()
    await to_confirmation(esign_harness, buyer)
    message_id, data = button_data(buyer, "提交订单")
    update = esign_harness.telegram.callback_update(buyer.fake, message_id, data)

    await esign_harness.feed(update)
    await esign_harness.feed(update)

    assert len(await esign_harness.orders.list_for_user(buyer.id)) == 1
    assert len(esign_harness.telegram.calls_of("sendInvoice")) == 1
    assert len(esign_harness.telegram.calls_of("answerCallbackQuery")) == sum(
        1 for u in esign_harness.fed if u.callback_query) - 1  # the repeat is not answered twice


async def test_repeated_successful_payment_update_is_handled_once(esign_harness):
    buyer = esign_harness.user()
    order = await to_payment(esign_harness, buyer)
    assert (await buyer.pre_checkout())["ok"]
    update = esign_harness.telegram.successful_payment_update(buyer.fake, buyer.last_invoice()["message_id"])

    await esign_harness.feed(update)
    await esign_harness.feed(update)

    assert sum("支付成功" in t for t in buyer.bot_messages()) == 1
    assert (await esign_harness.orders.get(order.id)).status is OrderStatus.PAID


async def test_repeated_update_is_dropped_even_after_a_restart(esign_harness):
    buyer = esign_harness.user()
    update = esign_harness.telegram.message_update(buyer.fake, "/start")
    await esign_harness.feed(update)
    esign_harness.restart()
    await esign_harness.feed(update)
    assert len(esign_harness.telegram.calls_of("sendMessage")) == 1
