"""A screen is text plus a keyboard; `show` puts it on the chat, editing in place on a tap."""
from __future__ import annotations

from dataclasses import dataclass

from aiogram.exceptions import TelegramBadRequest
from aiogram.filters.callback_data import CallbackData
from aiogram.methods import EditMessageText, SendMessage
from aiogram.methods.base import Response
from aiogram.types import (
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    Message,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
    TelegramObject,
)

Markup = InlineKeyboardMarkup | ReplyKeyboardMarkup | ReplyKeyboardRemove | None


@dataclass(frozen=True)
class Screen:
    text: str
    markup: Markup = None


def button(label: str, data: CallbackData) -> InlineKeyboardButton:
    # Buttons are immutable: one object per label and callback data serves every screen,
    # instead of a pydantic model and a packing of the data at every render.
    key = (label, type(data), *data.__dict__.values())
    found = _BUTTONS.get(key)
    if found is None:
        if len(_BUTTONS) >= BUTTONS_KEPT:
            _BUTTONS.clear()  # order ids make new buttons without end; the screens' own come back
        found = _BUTTONS[key] = InlineKeyboardButton(text=label, callback_data=data.pack())
    return found


BUTTONS_KEPT = 4096
_BUTTONS: dict[tuple, InlineKeyboardButton] = {}


def link(label: str, url: str) -> InlineKeyboardButton:
    return InlineKeyboardButton(text=label, url=url)


def inline(*rows: list[InlineKeyboardButton]) -> InlineKeyboardMarkup:
    # Markups are immutable too, and a screen's buttons are mostly the same objects (`button`):
    # the same buttons make one markup. The markup holds its buttons, so their ids stay theirs.
    key = tuple(tuple(map(id, row)) for row in rows if row)
    found = _MARKUPS.get(key)
    if found is None:
        if len(_MARKUPS) >= BUTTONS_KEPT:
            _MARKUPS.clear()
        found = _MARKUPS[key] = InlineKeyboardMarkup(inline_keyboard=[list(row) for row in rows if row])
    return found


_MARKUPS: dict[tuple, InlineKeyboardMarkup] = {}


def reply_keyboard(*rows: list[KeyboardButton]) -> ReplyKeyboardMarkup:
    return ReplyKeyboardMarkup(keyboard=list(rows), resize_keyboard=True, is_persistent=True)


class Shown(TelegramObject):
    """A message `show` sent or edited, as it reads it: its id. The rest of Telegram's reply is
    kept as plain data (TelegramObject allows extra fields), not parsed into models."""

    message_id: int


class EditScreen(EditMessageText):
    """EditMessageText (same fields, same defaults from the bot, same request) whose reply is not
    parsed back into a Message with its keyboard: `show` never reads it, and aiogram's parsing
    of it cost ~3 % of an update's CPU in `python -m bot bench`."""

    __returning__ = Shown | bool


class SendScreen(SendMessage):
    """SendMessage whose reply is not parsed back into a Message with its keyboard, as EditScreen."""

    __returning__ = Shown


# Built once and held: aiogram builds `Response[__returning__]` for every reply and pydantic
# keeps it only weakly (see bot.middlewares.KEPT_RESPONSE_MODELS).
KEPT_RESPONSE_MODELS = (Response[EditScreen.__returning__], Response[SendScreen.__returning__])


async def show(event: Message | CallbackQuery, screen: Screen, *, notice: str | None = None) -> None:
    """Answer a tap by editing its message; answer text with a new message.

    A reply keyboard cannot be attached to an edited message, so such screens always go new.
    """
    text = f"{notice}\n\n{screen.text}" if notice else screen.text
    if isinstance(event, CallbackQuery):
        message = event.message
        editable = isinstance(message, Message) and isinstance(screen.markup, InlineKeyboardMarkup | None)
        if editable:
            try:
                # what message.edit_text(text, reply_markup=screen.markup) sends; the reply left unparsed
                await EditScreen(chat_id=message.chat.id, message_id=message.message_id,
                                 business_connection_id=message.business_connection_id,
                                 text=text, reply_markup=screen.markup).as_(message.bot)
                return
            except TelegramBadRequest as exc:
                if "message is not modified" in exc.message:
                    return
                # Too old, deleted or not text: fall through and send the screen anew.
        chat_id = message.chat.id if message else event.from_user.id
        # what event.bot.send_message(chat_id, text, reply_markup=screen.markup) sends
        await SendScreen(chat_id=chat_id, text=text, reply_markup=screen.markup).as_(event.bot)
        return
    # what event.answer(text, reply_markup=screen.markup) sends
    await SendScreen(chat_id=event.chat.id, message_thread_id=event.message_thread_id if event.is_topic_message else None,
                     business_connection_id=event.business_connection_id, text=text,
                     reply_markup=screen.markup).as_(event.bot)
