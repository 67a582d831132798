"""The customer's side of the hand-off (F11): 联系客服 from every screen (R17), 购买咨询 (R2)
and 开具发票 from an order's details (R16) open a ticket, or return to the live one. While a
ticket is live the customer's free text (and media) goes to the agent; buttons and /start
still work, and a pinned banner says a conversation is open. 结束咨询 ends it.

Two routers: `router()` comes early (the entries must win over the static screens, e.g. the
phone step's 联系客服 key), `relay_router()` comes just before the fallback, so input a step
is waiting for (an enterprise name, a phone number, an SMS code) still goes to that step, and
what no step wants goes to the agent instead of "please use the buttons".
"""
from __future__ import annotations

import logging

from aiogram import Bot, F, Router
from aiogram.filters import StateFilter
from aiogram.fsm.state import State
from aiogram.types import CallbackQuery, Message, User
from aiogram.utils.callback_answer import CallbackAnswer

from bot.callbacks import Nav, SupportAction
from bot.context import AppContext
from bot.filters import When
from bot.flows.base import Flow, step_screen
from bot.flows.phone import is_label
from bot.flows.support.desk import Desk, content_kind
from bot.flows.support.lifecycle import after_reopen, after_resolve
from bot.runtime.metrics import TICKETS
from bot.screens import support as support_screens
from bot.screens.base import Screen
from bot.state.states import Menu, Phone
from services.catalog import quote
from services.orders import Order, OrderStatus
from services.phones import mask_phone
from services.support import Intake, IntakeCart, IntakeEnterprise, IntakeOrder, Ticket, TicketKind

log = logging.getLogger(__name__)

INVOICEABLE = (OrderStatus.PAID, OrderStatus.BOUND)


def enabled(app: AppContext) -> bool:
    return app.settings.staff_chat_id is not None


@step_screen(Menu.contact)
async def contact_screen(flow: Flow) -> Screen | None:
    """联系客服: the live ticket (or, without a staff group, the static contact screen)."""
    app = flow.app
    if not enabled(app):
        return support_screens.direct_contact(flow.tr, app.support.config, TicketKind.CONTACT)
    customer, ticket = await app.support.current(flow.user_id)
    if customer is not None and customer.banned:
        return support_screens.banned(flow.tr)
    if ticket is None or not ticket.live:
        return None  # resolved meanwhile: 首页
    agent = await app.support.agent(ticket.agent_id) if ticket.agent_id else None
    position = await app.support.queue_position(ticket.id)
    return support_screens.ticket_screen(flow.tr, ticket, config=app.support.config, now=app.clock.now(),
                                         agent=agent, ahead=(position - 1) if position else None)


async def build_intake(flow: Flow, user: User, kind: TicketKind, order: Order | None) -> Intake:
    """The intake card's content: cart or order, enterprise, masked phone, language, step."""
    app, session = flow.app, flow.session
    now = app.clock.now()
    phone = session.phone
    enterprises = []
    for ent in await app.enterprises.for_phone(phone) if phone else []:
        role = ent.members.get(phone) if phone else None
        enterprises.append(IntakeEnterprise(
            name=ent.name, verified=ent.verified, edition=ent.paid_edition(now),
            expires_at=ent.paid_expiry(now), role=role.value if role else None))
    cart = session.cart
    intake_cart = None
    if cart.edition:
        total = None
        if cart.pack_chosen:
            try:
                total = quote(app.catalog, cart).total_fen
            except ValueError:
                total = None
        intake_cart = IntakeCart(edition=cart.edition, years=cart.years, pack=cart.pack,
                                 pack_chosen=cart.pack_chosen, total_fen=total)
    intake_order = None
    if order is not None:
        bound = await app.enterprises.get(order.enterprise_id) if order.enterprise_id else None
        intake_order = IntakeOrder(
            id=order.id, edition=order.edition, years=order.years, pack=order.pack, total_fen=order.total_fen,
            status=order.status.value, channel=order.channel.value, paid_at=order.paid_at,
            enterprise_name=bound.name if bound else order.enterprise_name)
    return Intake(
        kind=kind,
        name=support_screens.display_name(user.first_name, user.last_name),
        username=user.username,
        lang=flow.tr.lang,
        phone_masked=mask_phone(phone) if phone else None,
        enterprise_name=session.enterprise_name,
        enterprises=enterprises,
        cart=intake_cart if kind is not TicketKind.INVOICE else None,
        order=intake_order,
        where=await flow.step(),
    )


async def go_below(event: Message | CallbackQuery, flow: Flow, step: State | None, notice: str | None = None,
                   screen: Screen | None = None) -> None:
    """Like flow.go, but the step's screen (or `screen`) is a new message at the bottom of the
    chat rather than an edit of the tapped one: a conversation with an agent happens below, so
    an edit far up would go unseen."""
    if step != Phone.number and await flow.step() == Phone.number.state:
        await flow.close_keyboard(event, flow.tr("phone.closed"))
    await flow.state.set_state(step)
    screen = screen or await flow.screen_for(step.state if step else None)
    text = f"{notice}\n\n{screen.text}" if notice else screen.text
    chat_id = event.chat.id if isinstance(event, Message) else flow.user_id
    assert event.bot is not None
    await event.bot.send_message(chat_id, text, reply_markup=screen.markup)


async def enter(event: Message | CallbackQuery, flow: Flow, desk: Desk, kind: TicketKind,
                order: Order | None = None) -> None:
    """One of the three entries: a ticket is opened (or the live one is returned to)."""
    app = flow.app
    if not enabled(app):  # no staff group: how to reach the service, as a new message (never a silent no-op)
        screen = support_screens.direct_contact(flow.tr, app.support.config, kind, order.id if order else None)
        await go_below(event, flow, Menu.contact, screen=screen)
        return
    assert event.from_user is not None
    intake = await build_intake(flow, event.from_user, kind, order)
    outcome = await app.support.open_ticket(flow.user_id, intake, order_id=order.id if order else None)
    if outcome.status == "banned":
        await flow.go(event, Menu.contact)
        return
    ticket = outcome.ticket
    assert ticket is not None
    staff = desk.staff_tr
    if outcome.status == "created":
        log.info("support.ticket_opened ticket=%s kind=%s", ticket.id, kind.value)
        TICKETS.labels(ticket.status.value).inc()
        await desk.post_card(ticket)
        await desk.sync_topic(flow.user_id, ticket)
        await desk.show_banner(flow.user_id, flow.tr)
        await go_below(event, flow, Menu.contact)
        return
    # Asked again while the ticket is live: the agent hears what for, the customer is back in it.
    what = staff(f"support.kind_{kind.value}")
    if order is not None:
        what += " · " + order.id
    elif intake.cart is not None and (cart := support_screens.cart_text(staff, intake.cart)):
        what += " · " + cart
    await desk.post(flow.user_id, staff("support.staff.asked_again", what=what))
    await desk.refresh_card(ticket)
    if outcome.customer.banner_message_id is None:  # e.g. the first entry failed half-way
        await desk.show_banner(flow.user_id, flow.tr)
    await go_below(event, flow, Menu.contact)


def router() -> Router:
    r = Router(name="support")

    @r.callback_query(Nav.filter(F.to == "contact"))
    async def contact(query: CallbackQuery, flow: Flow, desk: Desk) -> None:
        await enter(query, flow, desk, TicketKind.CONTACT)

    @r.message(StateFilter(Phone.number), When(F.text), is_label("btn.contact"))
    async def contact_from_keyboard(message: Message, flow: Flow, desk: Desk) -> None:
        await enter(message, flow, desk, TicketKind.CONTACT)  # R17, from the reply keyboard

    @r.callback_query(Nav.filter(F.to == "consult"))
    async def consult(query: CallbackQuery, flow: Flow, desk: Desk) -> None:
        await enter(query, flow, desk, TicketKind.CONSULT)  # R2: 购买咨询

    @r.callback_query(SupportAction.filter(F.action == "invoice"))
    async def invoice(query: CallbackQuery, callback_data: SupportAction, flow: Flow, desk: Desk,
                      callback_answer: CallbackAnswer) -> None:
        order = await flow.app.orders.get(callback_data.ref)
        if order is None or order.user_id != flow.user_id:
            callback_answer.text = flow.tr("orders.not_found")
            callback_answer.show_alert = True
            return
        if order.status not in INVOICEABLE:
            callback_answer.text = flow.tr("support.invoice_not_paid")
            callback_answer.show_alert = True
            return
        flow.session.order_id = order.id
        await enter(query, flow, desk, TicketKind.INVOICE, order)  # R16: 开具发票

    @r.callback_query(SupportAction.filter(F.action == "end"))
    async def end(query: CallbackQuery, flow: Flow, callback_answer: CallbackAnswer, desk: Desk) -> None:
        app = flow.app
        ticket = await app.support.live_ticket(flow.user_id) if enabled(app) else None
        if ticket is None:
            callback_answer.text = flow.tr("support.no_live")
            if await flow.step() == Menu.contact.state:
                await flow.go(query, None)
            return
        change = await app.support.resolve(ticket.id, by="customer")
        if change.status == "resolved_now" and change.ticket is not None:
            await after_resolve(desk, change.ticket, change.customer, by="customer", move_customer=False)
        notice = flow.tr("support.ended_by_customer")
        if app.support.config.reopen_minutes:
            notice += "\n" + flow.tr("support.reopen_hint", minutes=app.support.config.reopen_minutes)
        await go_below(query, flow, None, notice=notice)

    return r


async def relay_ticket(message: Message, app: AppContext) -> dict[str, Ticket] | bool:
    """A filter: the customer's message goes to customer service — a live ticket, or one
    resolved within the reopen window. Commands (/start) and non-content messages never do."""
    if not enabled(app) or message.chat.type != "private" or message.from_user is None:
        return False
    kind = content_kind(message)
    if kind is None or (kind == "text" and (message.text or "").startswith("/")):
        return False
    customer, ticket = await app.support.current(message.from_user.id)
    if customer is None or ticket is None or customer.banned:
        return False
    if ticket.live or app.support.can_reopen(ticket):
        return {"ticket": ticket}
    return False


def relay_router() -> Router:
    r = Router(name="support-relay")

    @r.message(relay_ticket)
    async def relay(message: Message, flow: Flow, ticket: Ticket, desk: Desk) -> None:
        app = flow.app
        support = app.support
        verdict = await support.flood(flow.user_id)
        if verdict != "ok":
            if verdict == "first_over":
                await message.answer(flow.tr("support.flood"))
            log.info("support.flood user=%s", flow.user_id)
            return
        if not ticket.live:
            change = await support.reopen_recent(flow.user_id)
            if change.status not in ("reopened", "live") or change.ticket is None:
                await flow.again(message, flow.tr("error.use_buttons"))
                return
            ticket = change.ticket
            if change.status == "reopened":
                await after_reopen(desk, ticket)
                await desk.show_banner(flow.user_id, flow.tr)
                await desk.relay_from_customer(message, ticket)
                await go_below(message, flow, Menu.contact, notice=flow.tr("support.reopened"))
                return
        await desk.relay_from_customer(message, ticket)

    @r.edited_message(When(F.chat.type == "private"))
    async def edited(message: Message, app: AppContext, bot: Bot, desk: Desk) -> None:
        if not enabled(app):
            return
        _, ticket = await app.support.current(message.chat.id)
        prefix = desk.customer_prefix(ticket) if ticket is not None else ""
        if await desk.mirror_edit(message, prefix=prefix) and ticket is not None and ticket.live:
            await desk.note(ticket, "✏️ " + (message.text or message.caption or ""), who="customer")

    return r
