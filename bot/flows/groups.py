"""Groups and channels (docs/security.md, "Groups"): the bot serves private chats and the staff
group (STAFF_CHAT_ID) only. Added to any other group, supergroup or channel, it leaves at once
and says nothing there; an update from such a chat (one it was in before, or a message that
reached it anyway) is dropped before any conversation, lock or dedup key is made for it, and
the bot leaves then too. Leaving silently keeps the bot from being used to spam a group with
the customer home screen, and keeps strangers' group chats out of Redis.

`GroupGuard` is an outer update middleware (bot/app.py puts it before the conversation
middleware); `router()` handles my_chat_member, so Telegram sends those updates at all
(webhook and polling ask only for the update types a handler uses)."""
from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware, Bot, Router
from aiogram.exceptions import TelegramAPIError
from aiogram.types import Chat, ChatMemberUpdated, TelegramObject, Update

from bot.context import AppContext

log = logging.getLogger(__name__)

GONE = frozenset({"left", "kicked"})  # the bot is no longer in the chat: nothing to leave
LEFT_KEPT = 4096  # chats left, remembered per process so a burst of their updates leaves once


class GroupGuard(BaseMiddleware):
    def __init__(self, app: AppContext) -> None:
        self.app = app
        self._left: dict[int, None] = {}

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        chat: Chat | None = data.get("event_chat")
        if chat is None or chat.type == "private" or chat.id == self.app.settings.staff_chat_id:
            return await handler(event, data)
        change = event.my_chat_member if isinstance(event, Update) else None
        if change is not None and change.new_chat_member.status in GONE:
            log.info("group.removed chat=%s type=%s", chat.id, chat.type)
            return None
        await self._leave(data["bot"], chat)
        return None

    async def _leave(self, bot: Bot, chat: Chat) -> None:
        if chat.id in self._left:
            return
        self._left[chat.id] = None
        if len(self._left) > LEFT_KEPT:
            del self._left[next(iter(self._left))]
        try:
            await bot.leave_chat(chat.id)
        except TelegramAPIError as exc:  # already gone, or not allowed: nothing more to do
            log.info("group.leave_failed chat=%s error=%s", chat.id, exc.message)
            return
        log.warning("group.left chat=%s type=%s: the bot serves private chats and the staff group only",
                    chat.id, chat.type)


def router() -> Router:
    r = Router(name="groups")

    @r.my_chat_member()
    async def membership(change: ChatMemberUpdated, app: AppContext) -> None:
        """What reaches here is a private chat (blocked, unblocked) or the staff group."""
        status = change.new_chat_member.status
        if change.chat.id == app.settings.staff_chat_id:
            log.warning("group.staff_membership chat=%s status=%s", change.chat.id, status)
        else:
            log.info("chat.membership user=%s status=%s", change.chat.id, status)

    return r
