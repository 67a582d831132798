"""Filters checked in the event loop.

aiogram hands a synchronous filter — a bare State, a magic filter such as F.text, a plain
function — to a worker thread, for every handler an update is checked against. The bot's
filters are async instead: states as StateFilter, callback data as CallbackData.filter(), and
magic filters wrapped in `When` (tests/test_filters.py keeps it so)."""
from __future__ import annotations

from typing import Any

from aiogram.filters import Filter
from aiogram.types import TelegramObject
from magic_filter import MagicFilter


class When(Filter):
    """A magic filter (F.text, F.contact, F.chat.type == "private") checked in the event loop."""

    def __init__(self, magic: MagicFilter) -> None:
        self.magic = magic

    async def __call__(self, event: TelegramObject) -> bool | dict[str, Any]:
        result = self.magic.resolve(event)
        return result if isinstance(result, dict) else bool(result)
