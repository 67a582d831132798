"""Refunds, Telegram side: refundStarPayment for Stars, the buyer told once, and the words staff
and the command line read. The money logic is services.refunds; this module only speaks."""
from __future__ import annotations

import logging

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError, TelegramBadRequest, TelegramNetworkError

from bot.context import AppContext
from config.texts import Translator
from services.catalog import format_amount
from services.payment_refunds import ProviderError
from services.refunds import BY_HAND, RefundCase, RefundOutcome, StarRefundRefused

log = logging.getLogger(__name__)

RAIL_NAMES = {"wechat": "微信支付", "alipay": "支付宝", "sandbox": "sandbox", "stars": "Telegram Stars"}


class BotStarRefunds:
    """refundStarPayment through the bot (services.refunds.StarRefunds)."""

    def __init__(self, bot: Bot) -> None:
        self._bot = bot

    async def refund_star_payment(self, user_id: int, charge_id: str) -> None:
        try:
            await self._bot.refund_star_payment(user_id=user_id, telegram_payment_charge_id=charge_id)
        except TelegramBadRequest as exc:
            if "CHARGE_ALREADY_REFUNDED" in exc.message:
                return  # refunded before (a retry after a lost answer): done all the same
            raise StarRefundRefused(exc.message) from None
        except TelegramNetworkError as exc:
            raise ProviderError("unreachable", exc.message) from None
        except TelegramAPIError as exc:
            raise ProviderError("telegram", exc.message) from None


def rail_label(app: AppContext, case: RefundCase) -> str:
    rail = app.refunds.rail_name(case)
    return RAIL_NAMES.get(rail, rail)


async def refund_case(bot: Bot, app: AppContext, case_id: str, *, by: str,
                      amount_fen: int | None = None) -> RefundOutcome:
    """Refund a case through its rail (once), and tell the buyer when the money is back."""
    outcome = await app.refunds.refund(case_id, by=by, amount_fen=amount_fen)
    log.info("refund.%s case=%s by=%s called=%s", outcome.status, case_id, by, outcome.called)
    if outcome.status == "refunded" and outcome.case is not None:
        await tell_buyer(bot, app, outcome.case)
    return outcome


async def mark_done(bot: Bot | None, app: AppContext, case_id: str, *, by: str, note: str) -> RefundOutcome:
    """Record that a person paid the case back outside the bot, and tell the buyer (once)."""
    outcome = await app.refunds.mark_done(case_id, by=by, note=note)
    log.info("refund.mark_%s case=%s by=%s", outcome.status, case_id, by)
    if outcome.status == "marked" and outcome.case is not None and bot is not None:
        await tell_buyer(bot, app, outcome.case)
    return outcome


async def tell_buyer(bot: Bot, app: AppContext, case: RefundCase) -> None:
    """The buyer hears that the money is back, once per case; a failure lets a later try tell."""
    if not await app.refunds.claim_telling(case.id):
        return
    order = await app.orders.get(case.order_id)
    chat_id = order.chat_id if order is not None else case.payer_id
    if chat_id is None:
        return  # a web payment for an order we never had: no chat to tell
    tr = app.texts.for_lang(await buyer_lang(app, case.order_id, order.user_id if order else chat_id))
    amount = format_amount(case.state.refunded_fen or case.amount_fen, case.currency)
    key = "refunds.buyer_refunded_by_hand" if case.state.provider_status == BY_HAND else "refunds.buyer_refunded"
    try:
        await bot.send_message(chat_id, tr(key, order_id=case.order_id, amount=amount))
    except TelegramAPIError as exc:
        log.info("refund.buyer_not_told case=%s error=%s", case.id, exc.message)
        await app.refunds.release_telling(case.id)


async def buyer_lang(app: AppContext, order_id: str, user_id: int) -> str:
    """The language the buyer last used with us: their web checkout's, or their help desk's."""
    link = await app.checkout.for_order(order_id)
    if link is not None:
        return link.lang
    customer = await app.support.customer(user_id)
    return customer.lang if customer is not None else "zh"


def outcome_text(tr: Translator, app: AppContext, outcome: RefundOutcome, case_id: str) -> str:
    """What staff (or the command line) read after asking for a refund."""
    case = outcome.case
    if case is None:
        return tr("refunds.unknown", case_id=case_id)
    amount = format_amount(case.state.refunded_fen or case.amount_fen, case.currency)
    fields = {"case_id": case.id, "order_id": case.order_id, "amount": amount, "rail": rail_label(app, case),
              "problem": outcome.problem or case.state.problem or "", "currency": case.currency,
              "provider": case.provider, "status": tr(f"refunds.status_{case.state.status}"),
              "by": case.state.by or "-", "note": case.state.note or ""}
    key = {"refunded": "done", "refunding": "processing", "already": "already", "refused": "refused",
           "retry": "retry", "manual": "manual", "no_rail": "no_rail", "marked": "marked_done",
           "busy": "busy"}.get(outcome.status, "unknown")
    if outcome.status == "already" and case.state.provider_status == BY_HAND:
        key = "already_by_hand"
    if outcome.status == "refused" and outcome.problem == "note":
        key = "note_needed"
    return tr(f"refunds.{key}", **fields)


def case_line(tr: Translator, case: RefundCase) -> str:
    return tr("refunds.list_line", case_id=case.id, order_id=case.order_id,
              amount=format_amount(case.amount_fen, case.currency), provider=case.provider or "-",
              status=tr(f"refunds.status_{case.state.status}"))
