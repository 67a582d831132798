"""The error guard: whatever fails, the user gets an answer and the update is not half-applied
(the unit of work drops the buffered FSM writes, the order services write atomically)."""
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware, Bot, Router
from aiogram.types import ErrorEvent, TelegramObject, User
from aiogram.utils.callback_answer import CallbackAnswer
from redis.exceptions import RedisError

from bot.metrics import REDIS_ERRORS
from config.texts import Texts, language_of

log = logging.getLogger(__name__)


class LeaveFailedAnswersToTheGuard(BaseMiddleware):
    """aiogram's CallbackAnswerMiddleware answers every query in a `finally`, even when the
    handler raised, so the guard's alert below would come too late ("query is too old") and
    the user would see nothing. Running inside it, this turns that empty answer off when the
    handler fails; the guard then answers the query with the apology."""

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        try:
            return await handler(event, data)
        except Exception:
            answer: CallbackAnswer | None = data.get("callback_answer")
            if answer is not None and not answer.answered:
                answer.disabled = True
            raise


def router(texts: Texts) -> Router:
    r = Router(name="errors")

    @r.errors()
    async def on_error(event: ErrorEvent, bot: Bot, event_from_user: User | None = None) -> bool:
        update, exc = event.update, event.exception
        busy = isinstance(exc, RedisError | OSError | TimeoutError)
        if busy:
            REDIS_ERRORS.inc()
        log.error("update.failed update_id=%s user=%s error=%s", update.update_id,
                  event_from_user.id if event_from_user else None, type(exc).__name__,
                  exc_info=not busy)
        tr = texts.for_lang(language_of(event_from_user.language_code if event_from_user else None))
        text = tr("error.busy" if busy else "error.apology")
        try:
            if update.callback_query:
                await update.callback_query.answer(text, show_alert=True)
            elif update.pre_checkout_query:
                await update.pre_checkout_query.answer(ok=False, error_message=text)
            elif event_from_user is not None:
                await bot.send_message(event_from_user.id, text)
        except Exception as reply_error:  # telling the user failed too; the log has it
            log.error("update.reply_failed update_id=%s error=%s", update.update_id, type(reply_error).__name__)
        return True

    return r
