"""In-chat payment (F4): a Telegram invoice per order, pre-checkout checks, and the payment
applied once per charge id. The R13 reminder and 立即绑定 follow a payment."""
import logging

from aiogram import Bot, F, Router
from aiogram.types import LabeledPrice, Message, PreCheckoutQuery

from bot import screens
from bot.alerts import alert_refund_pending
from bot.flow import Flow
from bot.logs import bind as bind_log
from bot.metrics import ORDERS, PAYMENTS
from bot.state.states import Buy
from bot.ui import show
from services.orders import Order

log = logging.getLogger(__name__)

TITLE_MAX, DESCRIPTION_MAX = 32, 255  # Bot API limits for sendInvoice


async def send_invoice(bot: Bot, order: Order, flow: Flow) -> None:
    tr = flow.tr
    labels = [
        screens.edition_name(tr, line.code) + f" × {line.quantity}" if line.kind == "edition"
        else screens.pack_name(tr, line.code)
        for line in order.lines
    ]
    edition = screens.edition_name(tr, order.edition)
    await bot.send_invoice(
        chat_id=order.chat_id,
        title=tr("buy.invoice_title", edition=edition, years=order.years)[:TITLE_MAX],
        description=tr("buy.invoice_description", order_id=order.id, items=" + ".join(labels),
                       contracts=f"{order.contracts:,}")[:DESCRIPTION_MAX],
        payload=order.id,
        provider_token=flow.app.settings.payment_provider_token.get_secret_value(),
        currency=order.currency,
        prices=[LabeledPrice(label=label, amount=line.amount_fen) for label, line in zip(labels, order.lines)],
    )


def router() -> Router:
    r = Router(name="payment")

    @r.pre_checkout_query()
    async def pre_checkout(query: PreCheckoutQuery, flow: Flow) -> None:
        refusal = await flow.app.orders.check_payable(
            query.invoice_payload, user_id=query.from_user.id,
            amount_fen=query.total_amount, currency=query.currency,
        )
        if refusal is None:
            await query.answer(ok=True)
        else:
            log.info("pre_checkout.refused order=%s reason=%s", query.invoice_payload, refusal)
            await query.answer(ok=False, error_message=flow.tr(f"pay.refused_{refusal}"))

    @r.message(F.successful_payment)
    async def successful_payment(message: Message, flow: Flow) -> None:
        payment = message.successful_payment
        outcome = await flow.app.orders.mark_paid(
            payment.invoice_payload,
            charge_id=payment.telegram_payment_charge_id,
            amount_fen=payment.total_amount,
            currency=payment.currency,
            provider="telegram",
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
            await alert_refund_pending(message.bot, flow.app, order_id=payment.invoice_payload,
                                       amount_fen=payment.total_amount, reason=outcome.reason or outcome.status,
                                       provider="telegram")
            reason = f"pay.reason_{outcome.reason}"
            if reason not in flow.app.texts.tables["zh"]:
                reason = "pay.reason_other"
            await show(message, screens.refund_pending(flow.tr, payment.invoice_payload,
                                                       payment.total_amount, flow.tr(reason)))
        # Otherwise a repeated notice of a payment already applied says nothing more.

    return r
