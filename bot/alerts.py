"""Alerts to the staff group: money that could not be applied is never silent (R21)."""
from __future__ import annotations

import logging

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError

from bot.callbacks import StaffAction
from bot.context import AppContext
from bot.refunds import rail_label
from bot.screens.base import button, inline
from services.catalog import format_amount
from services.orders import refund_case_id

log = logging.getLogger(__name__)


async def alert_refund_pending(bot: Bot, app: AppContext, *, charge_id: str, order_id: str, amount_fen: int,
                               currency: str, reason: str, provider: str) -> None:
    """Tell the staff group (its General topic) of a payment kept for a refund, with a 🔁 退款
    button when a rail can pay it back; always logged."""
    case_id = refund_case_id(charge_id)
    log.warning("refund.pending order=%s provider=%s reason=%s case=%s", order_id, provider, reason, case_id)
    chat_id = app.settings.staff_chat_id
    if chat_id is None:
        return
    tr = app.texts.for_lang("zh")
    text = tr("pay.staff_refund_alert", order_id=order_id, amount=format_amount(amount_fen, currency),
              reason=reason, provider=provider)
    case = await app.refunds.case(case_id)
    markup = None
    if case is not None and app.refunds.rail_name(case) == "manual":
        text += "\n" + tr("refunds.alert_manual", case_id=case_id, currency=currency)
    elif case is not None:
        text += "\n" + tr("refunds.alert_case", case_id=case_id, rail=rail_label(app, case))
        markup = inline([button(tr("refunds.btn_refund"), StaffAction(action="refund", ticket="-", ref=case_id))])
    try:
        await bot.send_message(chat_id, text, reply_markup=markup)
    except TelegramAPIError as exc:  # the log line above still has it
        log.error("refund.alert_failed order=%s error=%s", order_id, exc.message)
