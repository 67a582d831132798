"""A screen is text plus a keyboard; `show` puts it on the chat, editing in place on a tap."""
from __future__ import annotations

from dataclasses import dataclass

from aiogram.exceptions import TelegramBadRequest
from aiogram.filters.callback_data import CallbackData
from aiogram.types import (
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    Message,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
)

Markup = InlineKeyboardMarkup | ReplyKeyboardMarkup | ReplyKeyboardRemove | None


@dataclass(frozen=True)
class Screen:
    text: str
    markup: Markup = None


def button(label: str, data: CallbackData) -> InlineKeyboardButton:
    return InlineKeyboardButton(text=label, callback_data=data.pack())


def link(label: str, url: str) -> InlineKeyboardButton:
    return InlineKeyboardButton(text=label, url=url)


def inline(*rows: list[InlineKeyboardButton]) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(inline_keyboard=[row for row in rows if row])


def reply_keyboard(*rows: list[KeyboardButton]) -> ReplyKeyboardMarkup:
    return ReplyKeyboardMarkup(keyboard=list(rows), resize_keyboard=True, is_persistent=True)


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
                await message.edit_text(text, reply_markup=screen.markup)
                return
            except TelegramBadRequest as exc:
                if "message is not modified" in exc.message:
                    return
                # Too old, deleted or not text: fall through and send the screen anew.
        chat_id = message.chat.id if message else event.from_user.id
        await event.bot.send_message(chat_id, text, reply_markup=screen.markup)
        return
    await event.answer(text, reply_markup=screen.markup)
