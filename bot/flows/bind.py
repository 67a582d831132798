"""立即绑定 (F5, R12): choose a verified enterprise the buyer's phone has joined, confirm,
and the order is delivered to that enterprise's account."""
from aiogram import F, Router
from aiogram.types import CallbackQuery
from aiogram.utils.callback_answer import CallbackAnswer

from bot import screens
from bot.callbacks import BindConfirm, BindPick, OrderAction
from bot.flow import Flow, step_screen
from bot.metrics import ORDERS
from bot.ui import Screen
from bot.flows.orders import own_order
from bot.state.states import Bind, Orders
from bot.ui import show
from services.orders import OrderStatus


@step_screen(Bind.choose)
async def choose_screen(flow: Flow) -> Screen | None:
    order, phone = await flow.order(), flow.session.phone
    if order is None or not phone:
        return None
    return screens.bind_choose(flow.tr, order, await flow.phone_enterprises(), phone)


@step_screen(Bind.confirm)
async def confirm_screen(flow: Flow) -> Screen | None:
    order, enterprise_id = await flow.order(), flow.session.bind_enterprise_id
    enterprise = await flow.enterprise(enterprise_id) if enterprise_id else None
    return screens.bind_confirm(flow.tr, order, enterprise) if order and enterprise else None


def router() -> Router:
    r = Router(name="bind")

    @r.callback_query(OrderAction.filter(F.action == "bind"))
    async def choose(query: CallbackQuery, callback_data: OrderAction, flow: Flow, callback_answer: CallbackAnswer) -> None:
        order = await own_order(flow, callback_data.order_id, callback_answer)
        if order is None:
            return
        if order.status is not OrderStatus.PAID:
            bound = order.status is OrderStatus.BOUND
            callback_answer.text = flow.tr("bind.refused_bound" if bound else "bind.refused_not_paid")
            await flow.go(query, Orders.detail)
            return
        if not flow.session.phone:
            await show(query, screens.bind_no_phone(flow.tr, order))
            return
        await flow.go(query, Bind.choose)

    @r.callback_query(Bind.choose, BindPick.filter())
    async def pick(query: CallbackQuery, callback_data: BindPick, flow: Flow, callback_answer: CallbackAnswer) -> None:
        if not await own_order(flow, callback_data.order_id, callback_answer):
            return
        # Only the verified enterprises this phone has joined were offered (a forged id is not).
        joined = {e.id: e for e in await flow.phone_enterprises()}
        chosen = joined.get(callback_data.enterprise_id)
        if chosen is None or not chosen.verified:
            callback_answer.text = flow.tr("bind.refused_not_verified" if chosen else "bind.refused_not_member")
            callback_answer.show_alert = True
            await flow.again(query)
            return
        flow.session.bind_enterprise_id = callback_data.enterprise_id
        await flow.go(query, Bind.confirm)

    @r.callback_query(Bind.confirm, BindConfirm.filter())
    async def confirm(query: CallbackQuery, callback_data: BindConfirm, flow: Flow, callback_answer: CallbackAnswer) -> None:
        outcome = await flow.app.orders.bind(
            callback_data.order_id, user_id=flow.user_id,
            enterprise_id=callback_data.enterprise_id, phone=flow.session.phone or "",
        )
        if outcome.status == "bound":
            ORDERS.labels("bound", outcome.order.channel.value).inc()
            flow.session.bind_enterprise_id = None
            await flow.state.set_state(None)
            await show(query, screens.bound(flow.tr, outcome.order, outcome.enterprise))
            return
        if outcome.status == "already_bound":
            callback_answer.text = flow.tr("bind.already_bound")
            await flow.go(query, None)
            return
        reason = outcome.reason or "other"
        key = f"bind.refused_{reason}"
        callback_answer.text = flow.tr(key if key in flow.app.texts.tables["zh"] else "bind.refused_other")
        callback_answer.show_alert = True
        await flow.go(query, Bind.choose)

    return r
