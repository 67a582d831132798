"""我的订单 (F6): the list, an order's details, paying a pending order, cancelling it."""
from aiogram import Bot, F, Router
from aiogram.types import CallbackQuery
from aiogram.utils.callback_answer import CallbackAnswer

from bot import screens
from bot.alerts import alert_refund_pending
from bot.callbacks import Nav, OrderAction
from bot.flows.base import Flow, step_screen
from bot.flows.payment import offer_payment
from bot.screens.base import Screen
from bot.state.states import Buy, Orders
from services.checkout import charge_id
from services.orders import Order, OrderStatus
from services.web_payments import Applied


@step_screen(Orders.list)
async def list_screen(flow: Flow) -> Screen:
    return screens.order_list(flow.tr, await flow.app.orders.list_for_user(flow.user_id))


@step_screen(Buy.payment, Orders.detail)
async def order_screen(flow: Flow) -> Screen | None:
    order = await flow.order()
    if order is None:
        return None
    if order.status is OrderStatus.PENDING and await flow.step() == Buy.payment.state:
        return screens.awaiting_payment(flow.tr, order, flow.app.catalog.order_ttl_minutes)
    # An order no longer waiting for payment (expired, cancelled, paid) shows as it is now.
    bound_to = await flow.app.enterprises.get(order.enterprise_id) if order.enterprise_id else None
    return screens.order_detail(flow.tr, order, bound_to, flow.app.clock.now())


def router() -> Router:
    r = Router(name="orders")

    @r.callback_query(Nav.filter(F.to == "orders"))
    async def order_list(query: CallbackQuery, flow: Flow) -> None:
        await flow.go(query, Orders.list)

    @r.callback_query(OrderAction.filter(F.action == "view"))
    async def view(query: CallbackQuery, callback_data: OrderAction, flow: Flow, callback_answer: CallbackAnswer) -> None:
        if not await own_order(flow, callback_data.order_id, callback_answer):
            return
        await flow.go(query, Orders.detail)

    @r.callback_query(OrderAction.filter(F.action == "pay"))
    async def pay(query: CallbackQuery, callback_data: OrderAction, flow: Flow, callback_answer: CallbackAnswer) -> None:
        order = await own_order(flow, callback_data.order_id, callback_answer)
        if order is None:
            return
        if order.status is not OrderStatus.PENDING:
            callback_answer.text = flow.tr("pay.not_payable", reason=flow.tr(f"status.{order.status.value}"))
            await flow.go(query, Orders.detail)
            return
        await offer_payment(query, flow, order)

    @r.callback_query(OrderAction.filter(F.action == "cancel"))
    async def cancel(query: CallbackQuery, callback_data: OrderAction, flow: Flow, callback_answer: CallbackAnswer,
                     bot: Bot) -> None:
        if not await own_order(flow, callback_data.order_id, callback_answer):
            return
        # Its payment at a web provider is closed at once; one made meanwhile is kept (R21).
        cancelled = await flow.app.web_payments.cancel(callback_data.order_id, user_id=flow.user_id)
        ok = cancelled.order is not None and cancelled.order.status is OrderStatus.CANCELLED
        callback_answer.text = flow.tr("orders.cancelled" if ok else "orders.cannot_cancel")
        if cancelled.applied is not None and cancelled.applied.outcome.status == "refund_pending":
            await kept_for_refund(bot, flow, cancelled.applied)
        await flow.go(query, Orders.detail)

    return r


async def own_order(flow: Flow, order_id: str, callback_answer: CallbackAnswer) -> Order | None:
    """The order, when it exists and is the user's; otherwise a notice and None."""
    order = await flow.app.orders.get(order_id)
    if order is None or order.user_id != flow.user_id:
        callback_answer.text = flow.tr("orders.not_found")
        callback_answer.show_alert = True
        return None
    flow.session.order_id = order.id
    return order


async def kept_for_refund(bot: Bot, flow: Flow, applied: Applied) -> None:
    """A payment the provider took before the order was cancelled: staff are alerted (a refund
    case with its button), and the buyer hears it is kept for a refund, once per payment."""
    notice, charge = applied.notice, charge_id(applied.gateway, applied.notice.payment_id)
    await alert_refund_pending(bot, flow.app, charge_id=charge, order_id=notice.order_id, amount_fen=notice.amount_fen,
                               currency=notice.currency, reason=applied.outcome.reason or "cancelled",
                               provider=applied.gateway)
    if await flow.app.web_checkout.claim_telling(charge):
        reason = flow.tr(f"pay.reason_{applied.outcome.reason}" if flow.tr.has(f"pay.reason_{applied.outcome.reason}")
                         else "pay.reason_other")
        screen = screens.refund_pending(flow.tr, notice.order_id, notice.amount_fen, reason, currency=notice.currency)
        order = applied.outcome.order
        await bot.send_message(order.chat_id if order is not None else flow.user_id, screen.text,
                               reply_markup=screen.markup)
