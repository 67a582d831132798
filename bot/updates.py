"""Telegram's JSON to an Update, without the part the bot never reads: a tapped message's keyboard.

A callback_query update carries the message the button was on, its inline keyboard included
(`callback_query.message.reply_markup`), and aiogram builds a pydantic model for every button
of it. No handler reads an incoming message's keyboard (the screens are rebuilt from the
session and the callback data), and parsing it cost ~5 % of an update's CPU in
`python -m bot bench`. So every path that turns raw JSON into an Update goes through
`parse_update`: the dispatcher's `feed_raw_update` (`LeanDispatcher`, the bench), the webhook
(bot/web/webhook.py) and long polling (bot/polling.py, `RawGetUpdates`).
Updates fed as models (`feed_update`, the tests' harness) are left as they are.
"""
from __future__ import annotations

from typing import Any

from aiogram import Bot, Dispatcher
from aiogram.methods import GetUpdates
from aiogram.methods.base import Response
from aiogram.types import Update


def parse_update(raw: dict[str, Any], bot: Bot) -> Update:
    """`Update.model_validate(raw, context={"bot": bot})` without the tapped message's keyboard.
    The caller's dict is not changed; what is no Update (a list, a string) fails as it would."""
    query = raw.get("callback_query") if isinstance(raw, dict) else None
    if isinstance(query, dict):
        message = query.get("message")
        if isinstance(message, dict) and "reply_markup" in message:
            message = {key: value for key, value in message.items() if key != "reply_markup"}
            raw = {**raw, "callback_query": {**query, "message": message}}
    return Update.model_validate(raw, context={"bot": bot})


def update_kind(update: Update) -> str:
    """Update.event_type without its cost: aiogram caches that property by hashing the whole
    frozen update (every nested model) at each call, twice an update. An update carries exactly
    one event; "unknown" when it carries none aiogram knows of (a newer Bot API's, kept as an
    extra field)."""
    for name in update.model_fields_set:
        if name != "update_id" and name in EVENT_FIELDS and getattr(update, name) is not None:
            return name
    return "unknown"


EVENT_FIELDS = frozenset(Update.model_fields) - {"update_id"}


class LeanDispatcher(Dispatcher):
    """aiogram's Dispatcher, with raw updates (the bench) parsed by `parse_update`, and each
    update's type found by `update_kind`."""

    async def _listen_update(self, update: Update, **kwargs: Any) -> Any:
        kind = update_kind(update)
        if kind == "unknown":  # aiogram's own way: a warning, and the update skipped
            return await super()._listen_update(update, **kwargs)
        kwargs.update(event_update=update)
        return await self.propagate_event(update_type=kind, event=getattr(update, kind), **kwargs)

    async def feed_raw_update(self, bot: Bot, update: dict[str, Any], **kwargs: Any) -> Any:
        return await self.feed_update(bot, parse_update(update, bot), **kwargs)


class RawGetUpdates(GetUpdates):
    """getUpdates whose updates come back as plain dicts, for `parse_update` (aiogram's would
    parse each in full, keyboards included)."""

    __returning__ = list[dict[str, Any]]


# aiogram builds `Response[method.__returning__]` for every reply and pydantic keeps it only
# weakly: held here, it is built once (see bot.middlewares.KEPT_RESPONSE_MODELS).
KEPT_RESPONSE_MODEL = Response[RawGetUpdates.__returning__]
