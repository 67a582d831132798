"""Update middlewares, outermost first: drop repeated updates, one storage write per update,
then the conversation's session and the user's language for the handlers."""
from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware
from aiogram.fsm.context import FSMContext
from aiogram.types import TelegramObject, Update, User
from redis.asyncio import Redis

from bot.flow import Flow
from bot.state.session import Session
from bot.state.storage import UnitOfWorkStorage
from config.texts import Texts, language_of
from services import keys

log = logging.getLogger(__name__)

Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]


class DropRepeatedUpdates(BaseMiddleware):
    """Telegram re-delivers an update when it is unsure it arrived; handle each id once."""

    def __init__(self, redis: Redis, ttl_seconds: int) -> None:
        self._redis = redis
        self._ttl = ttl_seconds

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        assert isinstance(event, Update)
        key = keys.update_seen(data["bot"].id, event.update_id)
        if not await self._redis.set(key, 1, nx=True, ex=self._ttl):
            log.info("update.repeated update_id=%s", event.update_id)
            return None
        try:
            return await handler(event, data)
        except Exception:
            # Not handled after all: a redelivery must be able to try again.
            try:
                await self._redis.delete(key)
            except Exception:  # Redis may be what failed; the mark then expires on its own.
                pass
            raise


class UnitOfWork(BaseMiddleware):
    """Buffer FSM writes for the update; they are stored only when the handler succeeds."""

    def __init__(self, storage: UnitOfWorkStorage) -> None:
        self._storage = storage

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        async with self._storage.unit_of_work():
            return await handler(event, data)


class SessionAndLanguage(BaseMiddleware):
    """Give handlers `tr` (texts in the user's language), `session` (the conversation's data)
    and `flow` (both, with the step machinery); the session is stored once, after the handler."""

    def __init__(self, texts: Texts) -> None:
        self._texts = texts

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        user: User | None = data.get("event_from_user")
        data["tr"] = self._texts.for_lang(language_of(user.language_code if user else None))
        state: FSMContext | None = data.get("state")
        if state is None:
            return await handler(event, data)
        stored = await state.get_data()
        session = Session.from_data(stored)
        data["session"] = session
        if user is not None:
            data["flow"] = Flow(app=data["app"], session=session, tr=data["tr"], state=state, user_id=user.id)
        result = await handler(event, data)
        fresh = session.to_data()
        if fresh != {"session": stored.get("session") or {}}:
            await state.set_data(fresh)
        return result
