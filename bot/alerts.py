"""Alerts to the staff group (issue 6): money that could not be applied is never silent."""
from __future__ import annotations

import logging

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError

from bot.context import AppContext
from services.catalog import format_fen

log = logging.getLogger(__name__)


async def alert_refund_pending(bot: Bot, app: AppContext, *, order_id: str, amount_fen: int, reason: str,
                               provider: str) -> None:
    """Tell the staff group (its General topic) of a payment kept for a refund; always logged."""
    log.warning("refund.pending order=%s provider=%s reason=%s", order_id, provider, reason)
    chat_id = app.settings.staff_chat_id
    if chat_id is None:
        return
    text = app.texts.for_lang("zh")("pay.staff_refund_alert", order_id=order_id, amount=format_fen(amount_fen),
                                     reason=reason, provider=provider)
    try:
        await bot.send_message(chat_id, text)
    except TelegramAPIError as exc:  # the log line above still has it
        log.error("refund.alert_failed order=%s error=%s", order_id, exc.message)
