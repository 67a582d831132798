"""Updates on their way in (polling, the kind of update) and screens on their way out (show)."""
from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiogram import Bot, Dispatcher
from aiogram.client.default import DefaultBotProperties
from aiogram.methods import EditMessageText, SendMessage
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message, Update
from esign_devkit.testing.fake_telegram import FakeTelegram, FakeUser

from bot.flows.base import show
from bot.runtime.polling import poll
from bot.runtime.updates import update_kind
from bot.screens.base import Screen

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


async def test_polling_hands_each_update_to_its_handler_and_confirms_it() -> None:
    fake = FakeTelegram()
    bot = fake.make_bot()
    buyer = FakeUser(id=42, first_name="Buyer")
    fake.register_user(buyer)
    sent = await bot.send_message(buyer.id, "首页", reply_markup=InlineKeyboardMarkup(
        inline_keyboard=[[InlineKeyboardButton(text="购买套餐", callback_data="home:buy")]]))
    fake.push_update(fake.message_update(buyer, "/start"))
    fake.push_update(fake.click(buyer, "购买套餐"))

    dp = Dispatcher()
    seen: list[Any] = []

    @dp.message()
    async def text(message: Message) -> None:
        seen.append(message.text)

    @dp.callback_query()
    async def tapped(query: CallbackQuery) -> None:
        seen.append((query.data, query.message.message_id, query.message.text))

    stop = asyncio.Event()
    polling = asyncio.create_task(poll(dp, bot, stop, timeout=0))
    for _ in range(1500):  # on the outcome, up to 30 s on a busy machine
        if len(seen) == 2 and not fake.pending_updates:
            break
        await asyncio.sleep(0.02)
    stop.set()
    await polling
    assert seen == ["/start", ("home:buy", sent.message_id, "首页")]
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

    assert sent == [EditMessageText]
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
async def test_show_answers_a_message_as_message_answer_would(
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

    [(kind, _)] = sent
    assert kind is SendMessage
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


async def test_an_update_of_no_known_type_is_no_event_we_know(bot: Bot) -> None:
    for update in (Update(update_id=5), Update.model_validate({"update_id": 6, "newer_bot_api_event": {"x": 1}})):
        assert update_kind(update) == "unknown"  # an extra field of a newer Bot API is no event we know
        with pytest.warns(RuntimeWarning, match="Detected unknown update type"):
            await Dispatcher().feed_update(bot, update)  # aiogram's way: a warning, and it is skipped
    assert update_kind(Update.model_validate(tap())) == "callback_query"
