"""The error guard: whatever fails, the user gets an answer and the update is not half-applied
(the unit of work drops the buffered FSM writes, the order services write atomically).

One kind of update is not just answered: a payment (`successful_payment`) that could not be
applied because Redis did not answer. Telegram has taken the buyer's money and sends that
message once; the guard raises `PaymentNotStored`, and the transport does not confirm the
update (polling keeps its offset there, the webhook answers 503), so Telegram delivers it
again and it is applied once Redis is back."""
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware, Bot, Router
from aiogram.types import ErrorEvent, TelegramObject, Update, User
from aiogram.utils.callback_answer import CallbackAnswer
from redis.exceptions import RedisError

from bot.runtime.logs import captured, logging_context
from bot.runtime.metrics import REDIS_ERRORS
from config.texts import Texts, language_of

log = logging.getLogger(__name__)

PAYMENT_NOTICES_KEPT = 1024  # update ids whose buyer was told "payment received", per process


class PaymentNotStored(Exception):
    """A payment update failed because Redis did not answer: it must not be confirmed to Telegram."""

    def __init__(self, update_id: int) -> None:
        super().__init__(f"payment update {update_id} could not be stored")
        self.update_id = update_id


def is_payment(update: Update) -> bool:
    message = update.message
    return message is not None and message.successful_payment is not None


class FirstTimes:
    """Remembers the last `size` keys: `first(key)` is True once per key (no Redis needed)."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._seen: dict[Any, None] = {}

    def first(self, key: Any) -> bool:
        if key in self._seen:
            return False
        self._seen[key] = None
        if len(self._seen) > self._size:
            del self._seen[next(iter(self._seen))]
        return True


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
    # Telegram redelivers a payment that was not stored, maybe many times while Redis is down:
    # the buyer hears "received" once, not once per try.
    told_payment_pending = FirstTimes(PAYMENT_NOTICES_KEPT)

    @r.errors()
    async def on_error(event: ErrorEvent, bot: Bot, event_from_user: User | None = None) -> bool:
        update, exc = event.update, event.exception
        # The ids the update had bound when it failed (order_id too), on every line below.
        ids = {"update_id": update.update_id, **({"user_id": event_from_user.id} if event_from_user else {}),
               **captured(exc)}
        with logging_context(ids):
            return await answer(update, exc, bot, event_from_user)

    async def answer(update: Update, exc: Exception, bot: Bot, event_from_user: User | None) -> bool:
        busy = isinstance(exc, RedisError | OSError | TimeoutError)
        if busy:
            REDIS_ERRORS.inc()
        log.error("update.failed error=%s", type(exc).__name__, exc_info=not busy)
        tr = texts.for_lang(language_of(event_from_user.language_code if event_from_user else None))
        if busy and is_payment(update):
            # The money is taken: "busy" would invite a second payment; say it is being confirmed.
            if told_payment_pending.first(update.update_id) and update.message is not None:
                try:
                    await bot.send_message(update.message.chat.id, tr("error.payment_pending"))
                except Exception as reply_error:
                    log.error("update.reply_failed update_id=%s error=%s", update.update_id,
                              type(reply_error).__name__)
            log.warning("payment.not_stored update_id=%s: not confirmed, Telegram delivers it again",
                        update.update_id)
            raise PaymentNotStored(update.update_id) from exc
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
