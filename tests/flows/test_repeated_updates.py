"""DESIGN, middlewares: Telegram may deliver an update twice; each update_id is handled once."""
from services.orders import OrderStatus
from tests.flows.steps import ENTERPRISE_NAME, button_data, to_confirmation, to_enterprise_name, to_payment


async def test_repeated_update_id_of_a_message_is_handled_once(bot_harness):
    buyer = bot_harness.user()
    update = bot_harness.telegram.message_update(buyer.fake, "/start")

    await bot_harness.feed(update)
    await bot_harness.feed(update)

    assert len(bot_harness.telegram.calls_of("sendMessage")) == 1


async def test_repeated_enterprise_name_moves_on_once(bot_harness):
    buyer = bot_harness.user()
    await to_enterprise_name(buyer)
    update = bot_harness.telegram.message_update(buyer.fake, ENTERPRISE_NAME)

    await bot_harness.feed(update)
    sent = len(bot_harness.telegram.calls)
    await bot_harness.feed(update)

    assert len(bot_harness.telegram.calls) == sent  # not a word more
    assert await bot_harness.state_of(buyer) == "Phone:number"


async def test_repeated_submit_callback_makes_one_order(bot_harness):
    buyer = bot_harness.user()
    await to_confirmation(bot_harness, buyer)
    message_id, data = button_data(buyer, "提交订单")
    update = bot_harness.telegram.callback_update(buyer.fake, message_id, data)

    await bot_harness.feed(update)
    await bot_harness.feed(update)

    assert len(await bot_harness.orders.list_for_user(buyer.id)) == 1
    assert len(bot_harness.telegram.calls_of("sendInvoice")) == 1
    assert len(bot_harness.telegram.calls_of("answerCallbackQuery")) == sum(
        1 for u in bot_harness.fed if u.callback_query) - 1  # the repeat is not answered twice


async def test_repeated_successful_payment_update_is_handled_once(bot_harness):
    buyer = bot_harness.user()
    order = await to_payment(bot_harness, buyer)
    assert (await buyer.pre_checkout())["ok"]
    update = bot_harness.telegram.successful_payment_update(buyer.fake, buyer.last_invoice()["message_id"])

    await bot_harness.feed(update)
    await bot_harness.feed(update)

    assert sum("支付成功" in t for t in buyer.bot_messages()) == 1
    assert (await bot_harness.orders.get(order.id)).status is OrderStatus.PAID


async def test_repeated_update_is_dropped_even_after_a_restart(bot_harness):
    buyer = bot_harness.user()
    update = bot_harness.telegram.message_update(buyer.fake, "/start")
    await bot_harness.feed(update)
    bot_harness.restart()
    await bot_harness.feed(update)
    assert len(bot_harness.telegram.calls_of("sendMessage")) == 1
