"""我的订单 (F6): the list, an order's details, paying a pending order, cancelling it."""
from aiogram import F, Router
from aiogram.types import CallbackQuery
from aiogram.utils.callback_answer import CallbackAnswer

from bot import screens
from bot.callbacks import Nav, OrderAction
from bot.flows.base import Flow, step_screen
from bot.flows.payment import offer_payment
from bot.screens.base import Screen
from bot.state.states import Buy, Orders
from services.orders import Order, OrderStatus


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
    async def cancel(query: CallbackQuery, callback_data: OrderAction, flow: Flow, callback_answer: CallbackAnswer) -> None:
        if not await own_order(flow, callback_data.order_id, callback_answer):
            return
        order = await flow.app.orders.cancel(callback_data.order_id, user_id=flow.user_id)
        ok = order is not None and order.status is OrderStatus.CANCELLED
        callback_answer.text = flow.tr("orders.cancelled" if ok else "orders.cannot_cancel")
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
