"""立即绑定 (F5, R12, R19): choose a verified enterprise the buyer's phone has joined, confirm,
and the order is delivered to that enterprise's account.

What the enterprise has decides (services.delivery): the same edition adds time, a higher one
converts what is left of the lower one, a lower one is refused (no downgrade). An enterprise
that would refuse it is named with the reason, not offered; when none can take it, the buyer
may have the payment kept for a refund, and staff are alerted. A term that has already ended
(it runs from the purchase, R13) has nothing left to bind."""
from aiogram import F, Router
from aiogram.filters import StateFilter
from aiogram.types import CallbackQuery
from aiogram.utils.callback_answer import CallbackAnswer

from bot import screens
from bot.alerts import alert_refund_pending
from bot.callbacks import BindConfirm, BindPick, OrderAction
from bot.flows.base import Flow, show, step_screen
from bot.flows.orders import own_order
from bot.runtime.metrics import ORDERS
from bot.screens.base import Screen
from bot.state.states import Bind, Orders
from services.delivery import delivery_problem
from services.enterprises import Enterprise
from services.orders import Order, OrderStatus


@step_screen(Bind.choose)
async def choose_screen(flow: Flow) -> Screen | None:
    order, phone = await flow.order(), flow.session.phone
    if order is None or not phone:
        return None
    if term_over(flow, order):
        return screens.bind_term_over(flow.tr, order)
    enterprises = await flow.phone_enterprises()
    return screens.bind_choose(flow.tr, order, enterprises, phone, problems(flow, order, enterprises),
                               flow.app.clock.now())


def term_over(flow: Flow, order: Order) -> bool:
    ends = order.term_ends_at()
    return order.status is OrderStatus.PAID and ends is not None and ends <= flow.app.clock.now()


def problems(flow: Flow, order: Order, enterprises: list[Enterprise]) -> dict[str, str]:
    """Why each verified enterprise would refuse the order now, for those that would."""
    now, catalog = flow.app.clock.now(), flow.app.catalog
    found = {e.id: delivery_problem(e, order, catalog, now) for e in enterprises if e.verified}
    return {ent_id: problem for ent_id, problem in found.items() if problem is not None}


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
        await flow.go(query, Bind.choose)  # lists where it can go, or why nowhere

    @r.callback_query(StateFilter(Bind.choose), BindPick.filter())
    async def pick(query: CallbackQuery, callback_data: BindPick, flow: Flow, callback_answer: CallbackAnswer) -> None:
        order = await own_order(flow, callback_data.order_id, callback_answer)
        if order is None:
            return
        # Only the verified enterprises this phone has joined, and that can take the order,
        # were offered (a forged id is not).
        joined = {e.id: e for e in await flow.phone_enterprises()}
        chosen = joined.get(callback_data.enterprise_id)
        problem = problems(flow, order, [chosen]).get(chosen.id) if chosen is not None else None
        if chosen is None or not chosen.verified or problem is not None:
            key = f"bind.refused_{problem}" if problem else (
                "bind.refused_not_verified" if chosen else "bind.refused_not_member")
            callback_answer.text = flow.tr(key if flow.tr.has(key) else "bind.refused_other")
            callback_answer.show_alert = True
            await flow.again(query)
            return
        flow.session.bind_enterprise_id = callback_data.enterprise_id
        await flow.go(query, Bind.confirm)

    @r.callback_query(StateFilter(Bind.confirm), BindConfirm.filter())
    async def confirm(query: CallbackQuery, callback_data: BindConfirm, flow: Flow, callback_answer: CallbackAnswer) -> None:
        outcome = await flow.app.orders.bind(
            callback_data.order_id, user_id=flow.user_id,
            enterprise_id=callback_data.enterprise_id, phone=flow.session.phone or "",
        )
        if outcome.status == "bound":
            assert outcome.order is not None and outcome.enterprise is not None
            ORDERS.labels("bound", outcome.order.channel.value).inc()
            flow.session.bind_enterprise_id = None
            await flow.state.set_state(None)
            await show(query, screens.bound(flow.tr, outcome.order, outcome.enterprise, outcome.conversion))
            return
        if outcome.status == "already_bound":
            callback_answer.text = flow.tr("bind.already_bound")
            await flow.go(query, None)
            return
        reason = outcome.reason or "other"
        key = f"bind.refused_{reason}"
        callback_answer.text = flow.tr(key if flow.tr.has(key) else "bind.refused_other")
        callback_answer.show_alert = True
        await flow.go(query, Bind.choose)  # with the reason, and the refund when nothing can take it

    @r.callback_query(OrderAction.filter(F.action == "refund"))
    async def refund(query: CallbackQuery, callback_data: OrderAction, flow: Flow,
                     callback_answer: CallbackAnswer) -> None:
        """R19, R21: a paid order no enterprise of the buyer can take (every one is on a higher
        edition) is cancelled and its payment kept for a refund; staff are alerted."""
        order = await own_order(flow, callback_data.order_id, callback_answer)
        if order is None:
            return
        enterprises = [e for e in await flow.phone_enterprises() if e.verified]
        found = problems(flow, order, enterprises)
        unbindable = bool(enterprises) and all(found.get(e.id) == "downgrade" for e in enterprises)
        if order.status is not OrderStatus.PAID or not unbindable:
            callback_answer.text = flow.tr("error.stale")
            await flow.go(query, Orders.detail)
            return
        kept = await flow.app.orders.keep_for_refund(order.id, user_id=flow.user_id, reason="downgrade_at_binding")
        if kept is None or not kept.refund_pending:
            await flow.go(query, Orders.detail)
            return
        assert query.bot is not None
        paid = kept.paid_payment()
        await alert_refund_pending(query.bot, flow.app, charge_id=str(kept.charge_id), order_id=kept.id,
                                   amount_fen=int(paid["amount_fen"]), currency=str(paid["currency"]),
                                   reason="downgrade_at_binding", provider=kept.paid_provider)
        await flow.state.set_state(Orders.detail)
        await show(query, screens.refund_requested(flow.tr, kept))

    return r

