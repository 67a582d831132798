"""The update middleware that gives each update its conversation.

It runs inside aiogram's own outer middlewares (errors, user context), so a handler that
raises unwinds through it — nothing the update changed is stored — before aiogram's error
handlers answer the user (bot.errors).

For an update with a user: the conversation is opened under the user's lock, with the update's
dedup check and its stored state and data in one Redis round trip, and stored with the update
marked handled in one more (bot.state.conversations). A pre-checkout query is not put behind
the lock: Telegram needs its answer within 10 s, whatever else of the user's runs (or a dead
process's lock still holds); it reads the conversation and never writes it, and is deduplicated
by a mark of its own, as is an update without a user.

Handlers are given `state` (aiogram's FSMContext over the conversation), `raw_state`,
`session` (the conversation's data), `tr` (texts in the user's language) and `flow` (all of
them, with the step machinery).
"""
from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware
from aiogram.dispatcher.middlewares.user_context import EventContext
from aiogram.fsm.context import FSMContext
from aiogram.fsm.storage.base import StorageKey
from aiogram.types import TelegramObject, Update, User
from redis.asyncio import Redis

from bot.context import AppContext
from bot.flows.base import Flow
from bot.runtime.logs import bind as bind_log
from bot.state.conversations import ConversationStorage
from bot.state.session import Session
from config.texts import language_of
from services import keys
from services.orders import read_once as read_orders_once

log = logging.getLogger(__name__)

Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]


class Conversations(BaseMiddleware):
    def __init__(self, app: AppContext, storage: ConversationStorage) -> None:
        self.app = app
        self.storage = storage
        self.store = storage.store

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        assert isinstance(event, Update)
        user: User | None = data.get("event_from_user")
        data["tr"] = self.app.texts.for_lang(language_of(user.language_code if user else None))
        data["fsm_storage"] = self.storage
        key = conversation_key(data)
        if key is None:
            return await self._once(handler, event, data)
        if event.pre_checkout_query is not None:
            return await self._once(handler, event, data, key=key)
        async with self.store.open(key, update_id=event.update_id) as conversation:
            if conversation is None:
                log.info("update.repeated update_id=%s", event.update_id)
                return None
            session = Session.from_text(conversation.data)
            result = await self._handle(handler, event, data, key, conversation.state, session, user)
            conversation.set_data(session.to_text())
            return result

    async def _handle(self, handler: Handler, event: Update, data: dict[str, Any], key: StorageKey,
                      state: str | None, session: Session, user: User | None) -> Any:
        context = FSMContext(self.storage, key)
        data.update(state=context, raw_state=state, session=session)
        if session.order_id:  # the order in progress: on every log line of the update
            bind_log(order_id=session.order_id)
        if user is not None:
            data["flow"] = Flow(app=self.app, session=session, tr=data["tr"], state=context, user_id=user.id)
        with read_orders_once():  # an order is read from Redis once an update
            return await handler(event, data)

    async def _once(self, handler: Handler, event: Update, data: dict[str, Any], key: StorageKey | None = None) -> Any:
        """An update handled outside a user's lock, once per update id; when `key` is given,
        with the conversation read only."""
        redis: Redis = self.app.redis
        mark = keys.update_seen(data["bot"].id, event.update_id)
        if not await redis.set(mark, 1, nx=True, ex=self.store.dedup_seconds):
            log.info("update.repeated update_id=%s", event.update_id)
            return None
        try:
            if key is None:
                with read_orders_once():
                    return await handler(event, data)
            async with self.store.open(key, read_only=True) as conversation:
                assert conversation is not None
                user = data.get("event_from_user")
                return await self._handle(handler, event, data, key, conversation.state,
                                          Session.from_text(conversation.data), user)
        except Exception:
            # Not handled after all: a redelivery must be able to try again.
            with contextlib.suppress(Exception):  # Redis may be what failed; the mark then expires on its own
                await redis.delete(mark)
            raise


def conversation_key(data: dict[str, Any]) -> StorageKey | None:
    """The conversation of the update's user in its chat (aiogram's USER_IN_CHAT), if it has one."""
    context: EventContext | None = data.get("event_context")
    if context is None or context.user_id is None:
        return None
    return StorageKey(bot_id=data["bot"].id, chat_id=context.chat_id or context.user_id, user_id=context.user_id,
                      business_connection_id=context.business_connection_id)
