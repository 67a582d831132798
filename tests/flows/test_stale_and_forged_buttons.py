"""Buttons from old messages, and callback data nobody was given: a short notice, nothing
changes, nothing crashes; and every callback query gets an answer (Telegram's spinner stops)."""
import pytest

from services.orders import OrderStatus
from tests.flows.steps import (
    ADVANCED,
    ENTERPRISE_NAME,
    button_data,
    paid_order,
    to_code,
    to_confirmation,
    to_editions,
    to_pack,
    to_payment,
    years_button,
)

STALE = "此按钮已失效，请使用最新的消息。"
NOT_FOUND = "订单不存在。"


async def assert_nothing_happens(harness, buyer, message_id, data, notice):
    """Press and check: the notice as the callback answer, no message sent or edited, same state."""
    state, session = await harness.state_of(buyer), await harness.session_of(buyer)
    log_size = len(harness.telegram.bot_log)
    orders = await harness.orders.list_for_user(buyer.id)

    answer = await buyer.tap_stale(message_id, data)

    assert answer is not None, "the callback query was not answered"
    assert answer.get("text") == notice
    assert len(harness.telegram.bot_log) == log_size, "the bot sent or edited a message"
    assert await harness.state_of(buyer) == state
    assert await harness.session_of(buyer) == session
    assert await harness.orders.list_for_user(buyer.id) == orders
    return answer


async def test_stale_edition_button_after_going_home_changes_nothing(esign_harness):
    buyer = esign_harness.user()
    await to_editions(buyer)
    message_id, data = button_data(buyer, ADVANCED)
    await buyer.tap("🏠 首页")
    await buyer.send("/start")

    await assert_nothing_happens(esign_harness, buyer, message_id, data, STALE)
    assert await esign_harness.state_of(buyer) is None


async def test_stale_years_button_after_choosing_the_pack_step_changes_nothing(esign_harness):
    buyer = esign_harness.user()
    await to_pack(buyer, years=1)
    # The years message was edited into the pack step; press its old "3年" button again.
    message_id = buyer.screen.message_id
    await assert_nothing_happens(esign_harness, buyer, message_id, "yr:3", STALE)
    assert (await esign_harness.session_of(buyer)).cart.years == 1


async def test_stale_resend_button_after_the_phone_is_verified_sends_no_sms(esign_harness):
    buyer = esign_harness.user()
    await to_code(buyer)
    message_id, data = button_data(buyer, "重新发送验证码")
    await buyer.send(esign_harness.sms.last_code(buyer.phone))
    esign_harness.clock.advance(seconds=120)

    await assert_nothing_happens(esign_harness, buyer, message_id, data, STALE)
    assert esign_harness.sms.count(buyer.phone) == 1


async def test_stale_pack_button_at_the_confirmation_changes_nothing(esign_harness):
    buyer = esign_harness.user()
    await to_confirmation(esign_harness, buyer)
    await assert_nothing_happens(esign_harness, buyer, 1, "pk:pack_10k", STALE)
    assert (await esign_harness.session_of(buyer)).cart.pack is None


async def test_forged_view_of_another_users_order_is_refused(esign_harness):
    victim, intruder = esign_harness.user(), esign_harness.user()
    order = await to_payment(esign_harness, victim)
    await intruder.send("/start")

    for action in ("view", "pay", "cancel", "bind"):
        answer = await assert_nothing_happens(esign_harness, intruder, 1, f"ord:{action}:{order.id}", NOT_FOUND)
        assert answer.get("show_alert") is True
    assert (await esign_harness.orders.get(order.id)).status is OrderStatus.PENDING
    assert len(esign_harness.telegram.invoices(intruder.id)) == 0


async def test_forged_view_of_an_unknown_order_is_refused(esign_harness):
    buyer = esign_harness.user()
    await buyer.send("/start")
    await assert_nothing_happens(esign_harness, buyer, 1, "ord:view:o123", NOT_FOUND)


async def test_forged_bind_of_another_users_paid_order_is_refused(esign_harness):
    victim, intruder = esign_harness.user(), esign_harness.user()
    ent = await esign_harness.enterprise(ENTERPRISE_NAME, members={intruder.phone: "super_admin"})
    order = await paid_order(esign_harness, victim)
    await intruder.send("/start")

    await assert_nothing_happens(esign_harness, intruder, 1, f"ord:bind:{order.id}", NOT_FOUND)
    # Even straight at the confirmation step's button:
    await intruder.tap_stale(1, f"bok:{order.id}:{ent.id}")
    assert (await esign_harness.orders.get(order.id)).status is OrderStatus.PAID
    assert (await esign_harness.enterprises.get(ent.id)).edition == "experience"


@pytest.mark.parametrize("data", ["zz:1", "ord:view", "yr:abc", "nav", ":", "ed:", "bok:x", "x" * 64])
async def test_garbage_callback_data_is_answered_without_crashing(esign_harness, data):
    buyer = esign_harness.user()
    await to_editions(buyer)
    message_id = buyer.screen.message_id

    await assert_nothing_happens(esign_harness, buyer, message_id, data, STALE)
    screen = await buyer.tap(ADVANCED)  # the conversation goes on
    assert "请选择购买时长" in screen.text


@pytest.mark.parametrize("data", ["ed:experience", "ed:enterprise_max"])
async def test_forged_edition_is_refused_at_the_edition_step(esign_harness, data):
    buyer = esign_harness.user()
    await to_editions(buyer)
    await assert_nothing_happens(esign_harness, buyer, buyer.screen.message_id, data, STALE)
    assert await esign_harness.state_of(buyer) == "Buy:edition"
    assert (await esign_harness.session_of(buyer)).cart.edition is None


async def test_unoffered_choice_pressed_on_an_old_message_brings_that_message_up_to_date(esign_harness):
    buyer = esign_harness.user()
    await to_editions(buyer)
    old = buyer.screen.message_id
    await buyer.send("/start")
    await buyer.tap("购买套餐")
    await buyer.tap("立即购买")  # a newer edition screen below

    answer = await buyer.tap_stale(old, "ed:experience")

    assert answer["text"] == STALE
    assert "版本选购" in esign_harness.telegram.message(buyer.id, old)["text"]
    assert await esign_harness.state_of(buyer) == "Buy:edition"


async def test_forged_years_and_pack_are_refused(esign_harness):
    buyer = esign_harness.user()
    await to_editions(buyer)
    await buyer.tap(ADVANCED)
    await assert_nothing_happens(esign_harness, buyer, buyer.screen.message_id, "yr:7", STALE)
    assert await esign_harness.state_of(buyer) == "Buy:years"
    await buyer.tap(years_button(1))
    await assert_nothing_happens(esign_harness, buyer, buyer.screen.message_id, "pk:pack_99", STALE)
    assert await esign_harness.state_of(buyer) == "Buy:pack"
    assert (await esign_harness.session_of(buyer)).cart.pack_chosen is False


async def test_button_under_a_deleted_message_still_works(esign_harness):
    """Telegram sends an inaccessible message for a button under a deleted message."""
    buyer = esign_harness.user()
    await buyer.send("/start")
    answer = await buyer.tap_stale(9999, "nav:catalog")
    assert answer is not None
    assert "📦 购买套餐" in buyer.screen.text
    assert await esign_harness.state_of(buyer) == "Menu:catalog"


async def test_every_press_of_a_whole_purchase_is_answered(esign_harness):
    buyer = esign_harness.user()
    await paid_order(esign_harness, buyer)
    presses = [u.callback_query.id for u in esign_harness.fed if u.callback_query]
    assert len(presses) >= 6
    assert all(q in esign_harness.telegram.callback_answers for q in presses)
