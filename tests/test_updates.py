"""Telegram traffic the bot never reads is not parsed (bot/updates.py, bot/ui.py `show`): a tapped
message's keyboard, and the edited message Telegram sends back. Nothing a buyer sees changes."""
from __future__ import annotations

import asyncio
import copy
from typing import Any

import fakeredis.aioredis
import pytest
from aiogram import Bot
from aiogram.client.default import DefaultBotProperties
from aiogram.methods import SendMessage
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message, Update

from bot.app import build_context, build_dispatcher
from bot.polling import poll
from esign_devkit.testing.fake_telegram import FakeTelegram, FakeUser
from bot.ui import EditScreen, Screen, SendScreen, Shown, show
from bot.updates import LeanDispatcher, parse_update, update_kind
from config.settings import Settings

CHAT = {"id": 42, "type": "private", "first_name": "Buyer"}
BUYER = {"id": 42, "is_bot": False, "first_name": "Buyer", "language_code": "zh-hans"}
KEYBOARD = {"inline_keyboard": [[{"text": "购买套餐", "callback_data": "home:buy"}],
                                [{"text": "我的订单", "callback_data": "home:orders"},
                                 {"text": "网页端购买", "url": "https://example.com/buy"}]]}


def tap(**message: Any) -> dict[str, Any]:
    """A raw callback_query update as Telegram sends it: the tapped bot message, keyboard included."""
    tapped = {"message_id": 7, "date": 1_700_000_000, "chat": CHAT,
              "from": {"id": 777000111, "is_bot": True, "first_name": "E-Sign Bot"},
              "text": "👋 欢迎使用腾讯电子签", "reply_markup": KEYBOARD, **message}
    return {"update_id": 100, "callback_query": {"id": "4000", "from": BUYER, "chat_instance": "333",
                                                 "message": tapped, "data": "home:buy"}}


@pytest.fixture
def bot() -> Bot:
    return FakeTelegram().make_bot()


def test_a_tap_is_parsed_without_its_message_keyboard(bot: Bot) -> None:
    raw = tap()
    full = Update.model_validate(raw, context={"bot": bot})
    assert full.callback_query.message.reply_markup is not None  # aiogram would have parsed it

    update = parse_update(raw, bot)

    query = update.callback_query
    assert query.message.reply_markup is None
    assert isinstance(query.message, Message)
    assert (query.id, query.data, query.from_user.id, query.from_user.language_code) == ("4000", "home:buy", 42,
                                                                                          "zh-hans")
    assert (query.message.message_id, query.message.chat.id, query.message.text) == (7, 42, "👋 欢迎使用腾讯电子签")
    assert query.message.from_user.is_bot and update.update_id == 100
    # Everything else is what aiogram makes of it, and shortcuts work (bound to the bot).
    assert update.model_dump(exclude={"callback_query": {"message": {"reply_markup"}}}) == full.model_dump(
        exclude={"callback_query": {"message": {"reply_markup"}}})
    assert query.bot is bot and query.message.bot is bot


def test_the_callers_dict_is_not_changed(bot: Bot) -> None:
    raw = tap()
    before = copy.deepcopy(raw)
    parse_update(raw, bot)
    assert raw == before
    assert raw["callback_query"]["message"]["reply_markup"] == KEYBOARD


@pytest.mark.parametrize("raw", [
    {"update_id": 1, "message": {"message_id": 3, "date": 1_700_000_000, "chat": CHAT, "from": BUYER,
                                 "text": "/start", "entities": [{"type": "bot_command", "offset": 0, "length": 6}]}},
    # Not a tap: a message's keyboard (here a bot message a user forwarded back) is parsed as ever.
    {"update_id": 2, "message": {"message_id": 4, "date": 1_700_000_000, "chat": CHAT, "from": BUYER,
                                 "text": "fwd", "reply_markup": KEYBOARD,
                                 "reply_to_message": {"message_id": 2, "date": 1, "chat": CHAT, "text": "x",
                                                      "reply_markup": KEYBOARD}}},
    {"update_id": 3, "edited_message": {"message_id": 3, "date": 1, "edit_date": 2, "chat": CHAT, "from": BUYER,
                                        "text": "edited"}},
    # A tap on an inline message (no message) and on a message too old to be sent (inaccessible).
    {"update_id": 4, "callback_query": {"id": "1", "from": BUYER, "chat_instance": "3", "inline_message_id": "ab",
                                        "data": "x"}},
    {"update_id": 5, "callback_query": {"id": "2", "from": BUYER, "chat_instance": "3", "data": "x",
                                        "message": {"message_id": 1, "date": 0, "chat": CHAT}}},
    {"update_id": 6, "pre_checkout_query": {"id": "9", "from": BUYER, "currency": "CNY", "total_amount": 100,
                                            "invoice_payload": "order:1"}},
    {"update_id": 7, "some_future_update": {"x": 1}},
], ids=["command", "message-with-keyboard", "edited", "inline-tap", "inaccessible-tap", "pre-checkout", "unknown"])
def test_other_updates_are_parsed_as_aiogram_parses_them(bot: Bot, raw: dict[str, Any]) -> None:
    assert parse_update(raw, bot) == Update.model_validate(raw, context={"bot": bot})


def test_a_tap_without_a_keyboard_is_parsed_as_aiogram_parses_it(bot: Bot) -> None:
    raw = tap()
    del raw["callback_query"]["message"]["reply_markup"]
    assert parse_update(raw, bot) == Update.model_validate(raw, context={"bot": bot})


@pytest.mark.parametrize("body", [[], "update", 5, {"update_id": "x"}, {"callback_query": {"message": {}}}])
def test_what_is_no_update_fails_as_it_would(bot: Bot, body: Any) -> None:
    with pytest.raises(ValueError):  # pydantic's ValidationError, as Update.model_validate's
        parse_update(body, bot)


async def test_the_dispatcher_hands_a_raw_tap_to_its_handler(bot: Bot) -> None:
    dp = LeanDispatcher()
    seen: list[CallbackQuery] = []

    @dp.callback_query()
    async def tapped(query: CallbackQuery) -> str:
        seen.append(query)
        return "handled"

    raw = tap()
    assert await dp.feed_raw_update(bot, raw) == "handled"
    assert [(q.data, q.message.text, q.message.reply_markup) for q in seen] == [
        ("home:buy", "👋 欢迎使用腾讯电子签", None)]
    assert raw == tap()


def test_the_production_dispatcher_is_the_lean_one() -> None:
    dp = build_dispatcher(build_context(Settings(_env_file=None), fakeredis.aioredis.FakeRedis()))
    assert isinstance(dp, LeanDispatcher)


async def test_polling_parses_taps_without_their_keyboard_and_confirms_them() -> None:
    fake = FakeTelegram()
    bot = fake.make_bot()
    buyer = FakeUser(id=42, first_name="Buyer")
    fake.register_user(buyer)
    sent = await bot.send_message(buyer.id, "首页", reply_markup=InlineKeyboardMarkup(
        inline_keyboard=[[InlineKeyboardButton(text="购买套餐", callback_data="home:buy")]]))
    fake.push_update(fake.message_update(buyer, "/start"))
    fake.push_update(fake.click(buyer, "购买套餐"))
    assert fake.pending_updates[1]["callback_query"]["message"]["reply_markup"]  # Telegram sends it

    dp = LeanDispatcher()
    seen: list[Any] = []

    @dp.message()
    async def text(message: Message) -> None:
        seen.append(message.text)

    @dp.callback_query()
    async def tapped(query: CallbackQuery) -> None:
        seen.append((query.data, query.message.message_id, query.message.text, query.message.reply_markup))

    stop = asyncio.Event()
    polling = asyncio.create_task(poll(dp, bot, stop, timeout=0))
    for _ in range(100):
        if len(seen) == 2 and not fake.pending_updates:
            break
        await asyncio.sleep(0.02)
    stop.set()
    await polling
    assert seen == ["/start", ("home:buy", sent.message_id, "首页", None)]
    assert fake.pending_updates == []  # confirmed
    [first, *_] = fake.calls_of("getUpdates")
    assert first.params.keys() == {"timeout", "allowed_updates"} and first.params["timeout"] == 0
    assert sorted(first.params["allowed_updates"]) == ["callback_query", "message"]


# --- the edited screen ------------------------------------------------------------------------

MARKUP = InlineKeyboardMarkup(inline_keyboard=[[InlineKeyboardButton(text="返回", callback_data="home:back")]])


async def screen_on_chat(fake: FakeTelegram, bot: Bot) -> CallbackQuery:
    """A bot message with a keyboard, and a buyer's tap on it, as the handlers get it."""
    buyer = FakeUser(id=42, first_name="Buyer")
    fake.register_user(buyer)
    await bot.send_message(buyer.id, "首页", reply_markup=MARKUP)
    return fake.click(buyer, "返回").callback_query


@pytest.mark.parametrize("defaults", [None, DefaultBotProperties(parse_mode="HTML", link_preview_is_disabled=True,
                                                                 protect_content=True)])
async def test_show_sends_the_edit_message_edit_text_would(defaults: DefaultBotProperties | None) -> None:
    fake = FakeTelegram()
    bot = fake.make_bot(default=defaults) if defaults else fake.make_bot()
    query = await screen_on_chat(fake, bot)
    sent: list[type] = []

    @bot.session.middleware
    async def record(make_request: Any, bot_: Bot, method: Any) -> Any:
        sent.append(type(method))
        return await make_request(bot_, method)

    await show(query, Screen("<b>版本选购</b>", MARKUP), notice="已更新")

    assert sent == [EditScreen]  # not aiogram's EditMessageText, whose reply would be parsed
    [call] = fake.calls_of("editMessageText")
    expected = bot.session.build_params(bot, query.message.edit_text("已更新\n\n<b>版本选购</b>", reply_markup=MARKUP))
    assert call.params == expected
    assert call.params["chat_id"] == 42 and call.params["message_id"] == query.message.message_id
    if defaults:  # the bot's defaults are resolved as for EditMessageText
        assert call.params["parse_mode"] == "HTML" and call.params["disable_web_page_preview"] is True
    edited = fake.message(42, query.message.message_id)
    assert edited["text"] == "已更新\n\n<b>版本选购</b>"
    assert edited["reply_markup"] == MARKUP.model_dump(exclude_none=True)
    assert not fake.calls_of("sendMessage")[1:]  # only the first screen was sent


async def test_the_edited_message_comes_back_unparsed() -> None:
    fake = FakeTelegram()
    bot = fake.make_bot()
    query = await screen_on_chat(fake, bot)
    method = EditScreen(chat_id=42, message_id=query.message.message_id, text="新", reply_markup=MARKUP)
    assert type(method).__api_method__ == "editMessageText" and method.model_dump() == query.message.edit_text(
        "新", reply_markup=MARKUP).model_dump()

    reply = await bot(method)

    assert isinstance(reply, Shown) and reply.message_id == query.message.message_id
    assert reply.model_extra["reply_markup"] == MARKUP.model_dump(exclude_none=True)  # plain data, no models
    assert isinstance(reply.model_extra["chat"], dict)


async def test_an_unchanged_screen_is_left_and_a_failed_edit_sends_it_anew() -> None:
    fake = FakeTelegram()
    bot = fake.make_bot()
    query = await screen_on_chat(fake, bot)

    await show(query, Screen("首页", MARKUP))  # the same screen: Telegram says "message is not modified"
    assert [c.error.description for c in fake.calls_of("editMessageText")] == [
        "Bad Request: message is not modified: specified new message content and reply markup are exactly "
        "the same as a current content and reply markup of the message"]
    assert len(fake.calls_of("sendMessage")) == 1

    fake.fail_next("editMessageText", 400, "Bad Request: message to edit not found")
    await show(query, Screen("版本选购", MARKUP))
    assert len(fake.calls_of("sendMessage")) == 2
    assert fake.last_message(42)["text"] == "版本选购" and fake.last_message(42)["message_id"] != query.message.message_id


@pytest.mark.parametrize("defaults", [None, DefaultBotProperties(parse_mode="HTML", protect_content=True)])
async def test_show_answers_a_message_as_message_answer_would_and_leaves_the_reply_unparsed(
        defaults: DefaultBotProperties | None) -> None:
    fake = FakeTelegram()
    bot = fake.make_bot(default=defaults) if defaults else fake.make_bot()
    buyer = FakeUser(id=42, first_name="Buyer")
    fake.register_user(buyer)
    message = fake.message_update(buyer, "/start").message.as_(bot)
    sent: list[tuple[type, Any]] = []

    @bot.session.middleware
    async def record(make_request: Any, bot_: Bot, method: Any) -> Any:
        reply = await make_request(bot_, method)
        sent.append((type(method), reply))
        return reply

    await show(message, Screen("<b>首页</b>", MARKUP), notice="欢迎")

    [(kind, reply)] = sent
    assert kind is SendScreen and isinstance(reply, Shown)  # not a Message with its keyboard's models
    assert isinstance(reply.model_extra["reply_markup"], dict)
    [call] = fake.calls_of("sendMessage")
    assert call.params == bot.session.build_params(bot, message.answer("欢迎\n\n<b>首页</b>", reply_markup=MARKUP))
    assert fake.last_message(42)["text"] == "欢迎\n\n<b>首页</b>"


async def test_a_screen_that_cannot_be_edited_is_sent_as_bot_send_message_would() -> None:
    fake = FakeTelegram()
    bot = fake.make_bot()
    query = await screen_on_chat(fake, bot)
    fake.fail_next("editMessageText", 400, "Bad Request: message to edit not found")

    await show(query, Screen("版本选购", MARKUP))

    [_, call] = fake.calls_of("sendMessage")
    # Bot.send_message(42, "版本选购", reply_markup=MARKUP) sends this method
    assert call.params == bot.session.build_params(bot, SendMessage(chat_id=42, text="版本选购", reply_markup=MARKUP))


async def test_an_update_of_no_known_type_is_skipped_with_aiogram_s_warning(bot: Bot) -> None:
    from aiogram import Dispatcher

    for update in (Update(update_id=5), Update.model_validate({"update_id": 6, "newer_bot_api_event": {"x": 1}})):
        results = []
        for dispatcher in (Dispatcher(), LeanDispatcher()):
            with pytest.warns(RuntimeWarning, match="Detected unknown update type"):
                results.append(await dispatcher.feed_update(bot, update))
        assert results[0] == results[1]
        assert update_kind(update) == "unknown"  # an extra field of a newer Bot API is no event we know


async def test_each_kind_of_update_reaches_its_handlers(bot: Bot) -> None:
    dp = LeanDispatcher()
    seen: list[str] = []

    @dp.message()
    async def on_message(message: Message) -> None:
        seen.append(f"message {message.text}")

    @dp.callback_query()
    async def on_tap(query: CallbackQuery) -> None:
        seen.append(f"tap {query.data}")

    @dp.pre_checkout_query()
    async def on_pre_checkout(query: Any) -> None:
        seen.append(f"pre-checkout {query.invoice_payload}")

    await dp.feed_raw_update(bot, {"update_id": 1, "message": {"message_id": 1, "date": 0, "chat": CHAT,
                                                                "from": BUYER, "text": "你好"}})
    await dp.feed_raw_update(bot, tap())
    await dp.feed_raw_update(bot, {"update_id": 3, "pre_checkout_query": {
        "id": "p", "from": BUYER, "currency": "CNY", "total_amount": 480000, "invoice_payload": "order-1"}})
    assert seen == ["message 你好", "tap home:buy", "pre-checkout order-1"]
