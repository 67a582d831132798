"""The fake Telegram: Bot API semantics through aiogram, the update builders and the HTTP server."""
from __future__ import annotations

import asyncio
import re

import aiohttp
import pytest
from aiogram import Bot, Dispatcher, F, Router
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import TelegramBadRequest, TelegramConflictError, TelegramRetryAfter, TelegramUnauthorizedError
from aiogram.types import (
    CallbackQuery,
    InaccessibleMessage,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    LabeledPrice,
    Message,
    PreCheckoutQuery,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
    ReplyParameters,
    Update,
)
from esign_devkit.testing.bot_api_server import serve_bot_api, wait_for_message
from esign_devkit.testing.fake_telegram import FakeApiError, FakeTelegram, FakeUser

TOKEN = "777000111:SECRET"


def kb(*buttons: tuple[str, str]) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(inline_keyboard=[[InlineKeyboardButton(text=t, callback_data=d)] for t, d in buttons])


@pytest.fixture
def fake() -> FakeTelegram:
    return FakeTelegram()


@pytest.fixture
async def bot(fake: FakeTelegram):
    bot = fake.make_bot()
    yield bot
    await bot.session.close()


@pytest.fixture
def user(fake: FakeTelegram) -> FakeUser:
    user = FakeUser(id=5001, first_name="Li", language_code="zh-hans", phone="+8613800138000")
    fake.register_user(user)
    return user


async def test_get_me_matches_bot_identity(fake: FakeTelegram, bot: Bot) -> None:
    me = await bot.get_me()
    assert (me.id, me.username, me.is_bot) == (777000111, "esign_demo_bot", True)
    assert bot.id == me.id  # the default token starts with the bot id, as real tokens do


async def test_send_edit_delete_with_telegram_errors(fake: FakeTelegram, bot: Bot, user: FakeUser) -> None:
    sent = await bot.send_message(user.id, "Choose", reply_markup=kb(("A", "a"), ("B", "b")))
    assert isinstance(sent, Message) and sent.from_user and sent.from_user.id == fake.bot_id
    stored = fake.last_message(user.id)
    assert stored and stored["text"] == "Choose" and stored["reply_markup"]["inline_keyboard"][1][0]["callback_data"] == "b"

    edited = await bot.edit_message_text("Chosen", chat_id=user.id, message_id=sent.message_id, reply_markup=kb(("A", "a")))
    assert isinstance(edited, Message) and edited.edit_date is not None
    assert fake.edit_count(user.id, sent.message_id) == 1
    assert fake.message(user.id, sent.message_id)["text"] == "Chosen"

    with pytest.raises(TelegramBadRequest, match="message is not modified: specified new message content"):
        await bot.edit_message_text("Chosen", chat_id=user.id, message_id=sent.message_id, reply_markup=kb(("A", "a")))
    # Leaving the keyboard out of an edit removes it, as Telegram does.
    await bot.edit_message_text("Chosen", chat_id=user.id, message_id=sent.message_id)
    assert "reply_markup" not in fake.message(user.id, sent.message_id)
    with pytest.raises(TelegramBadRequest, match="message to edit not found"):
        await bot.edit_message_text("x", chat_id=user.id, message_id=9999)

    assert await bot.delete_message(user.id, sent.message_id) is True
    assert fake.message(user.id, sent.message_id) is None
    with pytest.raises(TelegramBadRequest, match="message to delete not found"):
        await bot.delete_message(user.id, sent.message_id)


async def test_send_validation_errors(fake: FakeTelegram, bot: Bot, user: FakeUser) -> None:
    with pytest.raises(TelegramBadRequest, match="Bad Request: chat not found"):
        await bot.send_message(424242, "hello")
    with pytest.raises(TelegramBadRequest, match="Bad Request: message text is empty"):
        await bot.send_message(user.id, "  ")
    with pytest.raises(TelegramBadRequest, match="Bad Request: BUTTON_DATA_INVALID"):
        await bot.send_message(user.id, "x", reply_markup=kb(("long", "x" * 65)))
    with pytest.raises(TelegramBadRequest, match="message to be replied not found"):
        await bot.send_message(user.id, "x", reply_parameters=ReplyParameters(message_id=999))
    assert fake.messages(user.id, from_bot=True) == []
    with pytest.raises(FakeApiError) as error:
        await fake.call("sendCarrierPigeon", {})
    assert (error.value.error_code, error.value.description) == (404, "Not Found")


async def test_reply_keyboard_is_tracked_but_not_echoed(fake: FakeTelegram, bot: Bot, user: FakeUser) -> None:
    share = ReplyKeyboardMarkup(keyboard=[[KeyboardButton(text="Share phone", request_contact=True)]], resize_keyboard=True)
    sent = await bot.send_message(user.id, "Your phone?", reply_markup=share)
    assert sent.reply_markup is None  # Telegram only echoes inline keyboards
    assert fake.reply_keyboard(user.id)["keyboard"][0][0]["request_contact"] is True
    assert fake.last_message(user.id)["reply_keyboard"]["keyboard"][0][0]["text"] == "Share phone"
    await bot.send_message(user.id, "Thanks", reply_markup=ReplyKeyboardRemove())
    assert fake.reply_keyboard(user.id) is None


async def test_callback_query_can_be_answered_once(fake: FakeTelegram, bot: Bot, user: FakeUser) -> None:
    await bot.send_message(user.id, "old", reply_markup=kb(("Buy", "buy:old")))
    await bot.send_message(user.id, "new", reply_markup=kb(("Buy", "buy:new"), ("Cancel", "cancel")))
    message_id, button = fake.find_button(user.id, "Buy")
    assert button["callback_data"] == "buy:new"  # the latest keyboard wins
    assert fake.find_button(user.id, re.compile("^Canc"))[1]["callback_data"] == "cancel"
    with pytest.raises(LookupError):
        fake.find_button(user.id, "Refund")

    update = fake.callback_update(user, message_id, "buy:new")
    assert isinstance(update.callback_query, CallbackQuery) and update.callback_query.data == "buy:new"
    assert update.callback_query.message.message_id == message_id
    query_id = update.callback_query.id
    assert await bot.answer_callback_query(query_id, text="OK") is True
    assert fake.callback_answer(query_id) == {"text": "OK"}
    with pytest.raises(TelegramBadRequest, match="query is too old and response timeout expired"):
        await bot.answer_callback_query(query_id)

    # Forged or stale buttons still arrive; a deleted message comes as an InaccessibleMessage.
    forged = fake.callback_update(user, 999, "buy:forged")
    assert isinstance(forged.callback_query.message, InaccessibleMessage)
    with pytest.raises(LookupError):
        fake.callback_update(user, message_id, "buy:forged", strict=True)
    assert fake.click(user, "Cancel").callback_query.data == "cancel"


async def test_message_and_contact_builders(fake: FakeTelegram, user: FakeUser) -> None:
    start = fake.message_update(user, "/start ref42")
    assert isinstance(start, Update) and start.message.text == "/start ref42"
    assert start.message.chat.id == user.id and start.message.from_user.language_code == "zh-hans"
    assert start.message.entities[0].type == "bot_command"
    assert fake.last_message(user.id, from_bot=None)["text"] == "/start ref42"

    own = fake.contact_update(user)
    assert own.message.contact.user_id == user.id and own.message.contact.phone_number == "+8613800138000"
    other = fake.contact_update(user, "8613900139000", own=False)
    assert other.message.contact.user_id not in (None, user.id)
    assert own.update_id < other.update_id

    edited = fake.edited_message_update(user, start.message.message_id, "/start")
    assert edited.edited_message.text == "/start" and edited.edited_message.edit_date is not None
    photo = fake.message_update(user, "scan", photo="AgACphoto")
    assert photo.message.photo[-1].file_id == "AgACphoto" and photo.message.caption == "scan"


async def test_invoice_pre_checkout_and_payment(fake: FakeTelegram, bot: Bot, user: FakeUser) -> None:
    prices = [LabeledPrice(label="Edition", amount=39900), LabeledPrice(label="Seats", amount=10000)]
    sent = await bot.send_invoice(
        user.id, title="Pro", description="One year", payload="order:17", provider_token="", currency="CNY", prices=prices
    )
    assert sent.invoice and sent.invoice.total_amount == 49900 and sent.invoice.currency == "CNY"
    [invoice] = fake.invoices(user.id)
    assert (invoice["message_id"], invoice["payload"], invoice["total_amount"]) == (sent.message_id, "order:17", 49900)
    assert invoice["prices"][0] == {"label": "Edition", "amount": 39900}

    update = fake.pre_checkout_update(user, sent.message_id)
    query = update.pre_checkout_query
    assert isinstance(query, PreCheckoutQuery)
    assert (query.currency, query.total_amount, query.invoice_payload) == ("CNY", 49900, "order:17")
    assert fake.pre_checkout_answer(query.id) is None
    assert await bot.answer_pre_checkout_query(query.id, ok=False, error_message="Sold out") is True
    assert fake.pre_checkout_answer(query.id) == {"ok": False, "error_message": "Sold out"}
    with pytest.raises(TelegramBadRequest, match="query is too old"):
        await bot.answer_pre_checkout_query(query.id, ok=True)
    assert fake.pre_checkout_update(user, sent.message_id, total_amount=1).pre_checkout_query.total_amount == 1

    paid = fake.successful_payment_update(user, sent.message_id, charge_id="ch-1")
    payment = paid.message.successful_payment
    assert (payment.total_amount, payment.invoice_payload, payment.telegram_payment_charge_id) == (49900, "order:17", "ch-1")
    assert paid.message.from_user.id == user.id
    other = fake.successful_payment_update(user, sent.message_id).message.successful_payment
    assert other.telegram_payment_charge_id != "ch-1"


async def test_fail_next_429_raises_retry_after_once(fake: FakeTelegram, bot: Bot, user: FakeUser) -> None:
    fake.fail_next("sendMessage", 429, "Too Many Requests: retry after 7", retry_after=7)
    with pytest.raises(TelegramRetryAfter) as error:
        await bot.send_message(user.id, "hi")
    assert error.value.retry_after == 7
    assert (await bot.send_message(user.id, "hi")).text == "hi"
    assert [c.error is not None for c in fake.calls_of("sendMessage")] == [True, False]


async def test_forum_topics(fake: FakeTelegram, bot: Bot, user: FakeUser) -> None:
    group = -1001234567890
    fake.add_chat(group, title="Operators", is_forum=True)
    topic = await bot.create_forum_topic(group, "Order 17")
    assert topic.name == "Order 17" and topic.message_thread_id > 0
    sent = await bot.send_message(group, "new order", message_thread_id=topic.message_thread_id)
    assert sent.message_thread_id == topic.message_thread_id and sent.is_topic_message
    # Telegram makes a topic message reply to the topic's creation message.
    assert sent.reply_to_message and sent.reply_to_message.forum_topic_created
    with pytest.raises(TelegramBadRequest, match="message thread not found"):
        await bot.send_message(group, "x", message_thread_id=999)
    assert await bot.close_forum_topic(group, topic.message_thread_id)
    with pytest.raises(TelegramBadRequest, match="TOPIC_NOT_MODIFIED"):
        await bot.close_forum_topic(group, topic.message_thread_id)
    copied = await bot.copy_message(user.id, group, sent.message_id)
    assert fake.message(user.id, copied.message_id)["text"] == "new order"
    assert await bot.pin_chat_message(group, sent.message_id) and fake.pinned(group) == [sent.message_id]
    assert await bot.delete_forum_topic(group, topic.message_thread_id)
    assert fake.topics(group) == {} and fake.messages(group) == []


async def test_dispatcher_round_trip(fake: FakeTelegram, bot: Bot, user: FakeUser) -> None:
    router = Router()

    @router.message(F.text == "/start")
    async def start(message: Message) -> None:
        await message.answer("Welcome", reply_markup=kb(("Buy", "buy")))

    @router.callback_query(F.data == "buy")
    async def buy(query: CallbackQuery) -> None:
        await query.answer("Noted")
        await query.message.edit_text("Bought")

    dp = Dispatcher()
    dp.include_router(router)
    await dp.feed_update(bot, fake.message_update(user, "/start"))
    assert fake.last_message(user.id)["text"] == "Welcome"
    click = fake.click(user, "Buy")
    await dp.feed_update(bot, click)
    assert fake.last_message(user.id)["text"] == "Bought"
    assert fake.callback_answer(click.callback_query.id) == {"text": "Noted"}


# --- over HTTP --------------------------------------------------------------------------------

@pytest.fixture
async def served(fake: FakeTelegram):
    runner, base_url = await serve_bot_api(fake, TOKEN)
    yield base_url
    await runner.cleanup()


def http_bot(base_url: str, token: str = TOKEN) -> Bot:
    return Bot(token, session=AiohttpSession(api=TelegramAPIServer.from_base(base_url)))


async def test_http_send_message_and_errors(fake: FakeTelegram, served: str, user: FakeUser) -> None:
    bot = http_bot(served)
    try:
        assert (await bot.get_me()).username == "esign_demo_bot"
        sent = await bot.send_message(user.id, "Pick [1]", reply_markup=kb(("Pay", "pay:1")))
        stored = fake.last_message(user.id)
        assert stored["text"] == "Pick [1]" and sent.reply_markup.inline_keyboard[0][0].callback_data == "pay:1"
        assert stored["reply_markup"] == {"inline_keyboard": [[{"text": "Pay", "callback_data": "pay:1"}]]}
        with pytest.raises(TelegramBadRequest, match="message to edit not found"):
            await bot.edit_message_text("x", chat_id=user.id, message_id=999)
        invoice = await bot.send_invoice(user.id, "Pro", "1y", "order:1", "CNY", [LabeledPrice(label="Pro", amount=100)])
        assert invoice.invoice.total_amount == 100
    finally:
        await bot.session.close()


async def test_http_wrong_token_is_unauthorized(served: str) -> None:
    bot = http_bot(served, "1:WRONG")
    try:
        with pytest.raises(TelegramUnauthorizedError):
            await bot.get_me()
    finally:
        await bot.session.close()
    async with aiohttp.ClientSession() as session, session.post(f"{served}/bot1:WRONG/getMe") as resp:
        assert resp.status == 401 and (await resp.json())["description"] == "Unauthorized"


async def test_http_long_polling(fake: FakeTelegram, served: str, user: FakeUser) -> None:
    bot = http_bot(served)
    try:
        assert await bot.get_updates(timeout=0) == []
        asyncio.get_running_loop().call_later(0.2, fake.push_update, fake.message_update(user, "hello"))
        [update] = await bot.get_updates(timeout=3)
        assert update.message.text == "hello"
        # Not confirmed yet: polled again; confirmed by a higher offset: gone.
        assert [u.update_id for u in await bot.get_updates(timeout=0)] == [update.update_id]
        assert await bot.get_updates(offset=update.update_id + 1, timeout=0) == []
        assert fake.pending_updates == []

        # A second poller ends the first one with 409, as Telegram does.
        first = asyncio.create_task(bot.get_updates(timeout=3))
        await asyncio.sleep(0.1)
        second = asyncio.create_task(bot.get_updates(timeout=0))
        with pytest.raises(TelegramConflictError):
            await first
        assert await second == []
    finally:
        await bot.session.close()


async def test_http_polling_dispatcher_end_to_end(fake: FakeTelegram, served: str, user: FakeUser) -> None:
    bot = http_bot(served)
    dp = Dispatcher()

    @dp.message()
    async def echo(message: Message) -> None:
        await message.answer(f"echo: {message.text}")

    polling = asyncio.create_task(dp.start_polling(bot, handle_signals=False, close_bot_session=True, polling_timeout=1))
    try:
        fake.push_update(fake.message_update(user, "ping"))
        reply = await wait_for_message(fake, user.id, lambda m: m.get("text", "").startswith("echo"), timeout=5)
        assert reply["text"] == "echo: ping"
    finally:
        await dp.stop_polling()
        await asyncio.wait_for(polling, 10)


# --- customer service (F11) needs: unpinning, getChat, user media, topics gone and copies edited -


async def test_unpin_chat_message(fake: FakeTelegram, bot: Bot, user: FakeUser) -> None:
    first = await bot.send_message(user.id, "one")
    second = await bot.send_message(user.id, "two")
    await bot.pin_chat_message(user.id, first.message_id)
    await bot.pin_chat_message(user.id, second.message_id)
    assert await bot.unpin_chat_message(user.id, message_id=first.message_id)
    assert fake.pinned(user.id) == [second.message_id]
    assert await bot.unpin_chat_message(user.id)  # without an id: the latest pin
    assert fake.pinned(user.id) == []
    with pytest.raises(TelegramBadRequest, match="message to unpin not found"):
        await bot.unpin_chat_message(user.id, message_id=first.message_id)


async def test_get_chat_says_whether_a_group_is_a_forum(fake: FakeTelegram, bot: Bot) -> None:
    fake.add_chat(-1001, title="Staff", is_forum=True)
    fake.add_chat(-1002, title="Plain")
    assert (await bot.get_chat(-1001)).is_forum is True
    plain = await bot.get_chat(-1002)
    assert plain.type == "supergroup" and not plain.is_forum
    with pytest.raises(TelegramBadRequest, match="chat not found"):
        await bot.get_chat(-1003)


@pytest.mark.parametrize("kind", ["photo", "document", "voice", "video", "sticker"])
async def test_media_update_in_a_topic_with_a_caption(fake: FakeTelegram, bot: Bot, user: FakeUser, kind) -> None:
    group = -1001234567890
    fake.add_chat(group, is_forum=True)
    topic = await bot.create_forum_topic(group, "Li")
    update = fake.media_update(user, kind, "see this", chat_id=group, message_thread_id=topic.message_thread_id)
    message = update.message
    assert getattr(message, kind) and message.message_thread_id == topic.message_thread_id
    assert message.caption == (None if kind == "sticker" else "see this")  # stickers take no caption
    # The bot can copy it anywhere, the caption replaced where the kind takes one.
    copied = await bot.copy_message(user.id, group, message.message_id, caption="Agent: see this")
    stored = fake.message(user.id, copied.message_id)
    assert kind in stored
    if kind != "sticker":
        assert stored["caption"] == "Agent: see this"


async def test_a_deleted_topic_refuses_copies_and_copies_can_be_edited(fake: FakeTelegram, bot: Bot,
                                                                       user: FakeUser) -> None:
    group = -1001234567890
    fake.add_chat(group, is_forum=True)
    topic = await bot.create_forum_topic(group, "Li")
    said = fake.message_update(user, "hello")
    copied = await bot.copy_message(group, user.id, said.message.message_id, message_thread_id=topic.message_thread_id)
    edited = await bot.edit_message_text("hello (edited)", chat_id=group, message_id=copied.message_id)
    assert edited.text == "hello (edited)" and fake.edit_count(group, copied.message_id) == 1
    await bot.delete_forum_topic(group, topic.message_thread_id)
    with pytest.raises(TelegramBadRequest, match="message thread not found"):
        await bot.copy_message(group, user.id, said.message.message_id, message_thread_id=topic.message_thread_id)


async def test_get_chat_member_the_bot_administers_its_groups(fake: FakeTelegram, bot: Bot, user: FakeUser) -> None:
    fake.add_chat(-1001, title="Staff", is_forum=True)
    me = await bot.get_chat_member(-1001, bot.id)
    assert me.status == "administrator" and me.can_manage_topics
    assert (await bot.get_chat_member(user.id, user.id)).status == "member"
    with pytest.raises(TelegramBadRequest, match="user not found"):
        await bot.get_chat_member(-1001, 4242)
