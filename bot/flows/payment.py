"""In-chat payment (F4): a Telegram invoice per order, pre-checkout checks, and the payment
applied once per charge id. The R13 reminder and 立即绑定 follow a payment.

Every way to pay in chat goes through `offer_payment` (提交订单, 我的订单's 去支付, an agent's
quote), and the pre-checkout checks again: an order the chat may not take (R2, from the
order's own edition and amount) is sent to the web checkout instead, never invoiced."""
import logging
from datetime import timedelta

from aiogram import Bot, F, Router
from aiogram.types import CallbackQuery, LabeledPrice, Message, PreCheckoutQuery

from bot import screens
from bot.alerts import alert_refund_pending
from bot.filters import When
from bot.flows.base import Flow, show
from bot.runtime.logs import bind as bind_log
from bot.runtime.metrics import ORDERS, PAYMENTS
from bot.screens.billing import line_label, order_label
from bot.state.states import Billing, Buy
from config.texts import Translator
from services.orders import STARS, Order

log = logging.getLogger(__name__)

TITLE_MAX, DESCRIPTION_MAX, LABEL_MAX = 32, 255, 32  # Bot API limits for sendInvoice


class NotPayableInChat(Exception):
    """The order may only be paid on the web (R2); no invoice is sent for it."""


async def offer_payment(event: Message | CallbackQuery, flow: Flow, order: Order) -> None:
    """Pay an order in chat when the chat may take it, otherwise on the web checkout (R2)."""
    flow.session.order_id = order.id
    if not flow.app.orders.payable_in_chat(order):
        await flow.go(event, Billing.web_pay)
        return
    assert event.bot is not None
    await send_invoice(event.bot, order, flow)  # first: if it fails, the step stays as it was
    await flow.go(event, Buy.payment)


async def send_invoice(bot: Bot, order: Order, flow: Flow) -> None:
    if not flow.app.orders.payable_in_chat(order):
        raise NotPayableInChat(order.id)
    tr = flow.tr
    labels = [line_label(tr, line)[:LABEL_MAX] for line in order.lines]
    if flow.app.settings.chat_currency == STARS:
        await send_stars_invoice(bot, order, flow, labels)
        return
    await bot.send_invoice(
        chat_id=order.chat_id,
        title=invoice_title(tr, order),
        description=tr("pay.invoice_description", order_id=order.id, items=" + ".join(labels),
                       contracts=f"{order.contracts:,}")[:DESCRIPTION_MAX],
        payload=order.id,
        provider_token=flow.app.settings.payment_provider_token.get_secret_value(),
        currency=order.currency,
        prices=[LabeledPrice(label=label, amount=line.amount_fen) for label, line in zip(labels, order.lines, strict=True)],
    )


def invoice_title(tr: Translator, order: Order) -> str:
    """What is bought, add-on pack included, in Telegram's 32 characters: with the brand when it
    fits, else the short label alone."""
    full = tr("pay.invoice_title", label=order_label(tr, order))
    return full if len(full) <= TITLE_MAX else order_label(tr, order, short=True)[:TITLE_MAX]


async def send_stars_invoice(bot: Bot, order: Order, flow: Flow, labels: list[str]) -> None:
    """The same invoice in Telegram Stars: no provider token, and one price (Telegram takes one
    line for XTR), the order's star total from the catalog."""
    if order.total_stars is None:
        raise NotPayableInChat(order.id)  # the catalog has no star prices: start-up refuses this
    tr = flow.tr
    await bot.send_invoice(
        chat_id=order.chat_id,
        title=invoice_title(tr, order),
        description=tr("pay.invoice_description", order_id=order.id, items=" + ".join(labels),
                       contracts=f"{order.contracts:,}")[:DESCRIPTION_MAX],
        payload=order.id,
        provider_token="",
        currency=STARS,
        prices=[LabeledPrice(label=invoice_title(tr, order)[:LABEL_MAX],
                             amount=order.total_stars)],
    )


def router() -> Router:
    r = Router(name="payment")

    @r.pre_checkout_query()
    async def pre_checkout(query: PreCheckoutQuery, flow: Flow) -> None:
        app = flow.app
        refusal = await app.orders.hold_for_payment(
            query.invoice_payload, user_id=query.from_user.id,
            amount_fen=query.total_amount, currency=query.currency,
            hold=timedelta(minutes=app.catalog.payment_hold_minutes),
        )
        if refusal is None:
            await query.answer(ok=True)
        else:
            log.info("pre_checkout.refused order=%s reason=%s", query.invoice_payload, refusal)
            await query.answer(ok=False, error_message=flow.tr(f"pay.refused_{refusal}"))

    @r.message(When(F.successful_payment))
    async def successful_payment(message: Message, flow: Flow) -> None:
        payment = message.successful_payment
        assert payment is not None and message.bot is not None  # the filter above
        outcome = await flow.app.orders.mark_paid(
            payment.invoice_payload,
            charge_id=payment.telegram_payment_charge_id,
            amount_fen=payment.total_amount,
            currency=payment.currency,
            provider="telegram",
            payer_id=message.from_user.id if message.from_user else None,
        )
        bind_log(order_id=payment.invoice_payload)
        PAYMENTS.labels("telegram", outcome.status).inc()
        if outcome.status == "paid" and outcome.order:
            ORDERS.labels(outcome.order.status.value, outcome.order.channel.value).inc()
        log.info("payment.%s", outcome.status)
        # A repeat whose 支付成功 never got stored (the process died in between) is told now.
        told_already = outcome.status == "duplicate" and not (
            outcome.order is not None and outcome.order.id == flow.session.order_id
            and outcome.order.charge_id == payment.telegram_payment_charge_id
            and await flow.step() == Buy.payment.state)
        if outcome.status in ("paid", "duplicate") and outcome.order and not told_already:
            flow.session.order_id = outcome.order.id
            await flow.state.set_state(None)
            await show(message, screens.paid(flow.tr, outcome.order))
        elif outcome.status in ("refund_pending", "unknown_order"):
            await alert_refund_pending(message.bot, flow.app, charge_id=payment.telegram_payment_charge_id,
                                       order_id=payment.invoice_payload, amount_fen=payment.total_amount,
                                       currency=payment.currency, reason=outcome.reason or outcome.status,
                                       provider="telegram")
            reason = f"pay.reason_{outcome.reason}"
            if reason not in flow.app.texts.tables["zh"]:
                reason = "pay.reason_other"
            await show(message, screens.refund_pending(flow.tr, payment.invoice_payload, payment.total_amount,
                                                       flow.tr(reason), currency=payment.currency))
        # Otherwise a repeated notice of a payment already applied says nothing more.

    return r
