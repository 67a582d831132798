"""A screen is text plus a keyboard, built by the pure functions of bot/screens from data;
bot.flows.base.show puts it on the chat."""
from __future__ import annotations

from dataclasses import dataclass

from aiogram.filters.callback_data import CallbackData
from aiogram.types import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
)

Markup = InlineKeyboardMarkup | ReplyKeyboardMarkup | ReplyKeyboardRemove | None


@dataclass(frozen=True)
class Screen:
    text: str
    markup: Markup = None


def button(label: str, data: CallbackData) -> InlineKeyboardButton:
    # Buttons are immutable: one object per label and callback data serves every screen,
    # instead of a pydantic model and a packing of the data at every render.
    key: tuple[object, ...] = (label, type(data), *data.__dict__.values())
    found = _BUTTONS.get(key)
    if found is None:
        if len(_BUTTONS) >= BUTTONS_KEPT:
            _BUTTONS.clear()  # order ids make new buttons without end; the screens' own come back
        found = _BUTTONS[key] = InlineKeyboardButton(text=label, callback_data=data.pack())
    return found


BUTTONS_KEPT = 4096
_BUTTONS: dict[tuple[object, ...], InlineKeyboardButton] = {}


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


_MARKUPS: dict[tuple[tuple[int, ...], ...], InlineKeyboardMarkup] = {}


def reply_keyboard(*rows: list[KeyboardButton]) -> ReplyKeyboardMarkup:
    return ReplyKeyboardMarkup(keyboard=list(rows), resize_keyboard=True, is_persistent=True)
