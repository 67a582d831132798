"""Ticket transitions as both sides see them (item 4 of the hand-off): claim (the customer
hears an agent joined; the agent gets the transcript), transfer, resolve (both sides told; the
customer lands on 首页 with the cart kept), reopen. The transitions themselves are
services.support's; this is who is told what, in which language."""
from __future__ import annotations

import logging

from bot.flows.support.desk import Desk
from bot.runtime.metrics import TICKETS
from bot.screens import support as support_screens
from services.support import Agent, SupportCustomer, Ticket

log = logging.getLogger(__name__)


async def claim(desk: Desk, ticket_id: str, agent: Agent) -> str | None:
    """The agent takes the ticket. Returns a word for the agent when it could not be taken
    (None when it was: the topic says so for everyone)."""
    support, staff = desk.support, desk.staff_tr
    change = await support.claim(ticket_id, agent.id)
    if change.status == "already":
        return staff("support.staff.already_yours")
    if change.status == "taken":
        owner = await support.agent(change.ticket.agent_id) if change.ticket and change.ticket.agent_id else None
        return staff("support.staff.taken", agent=support_screens.staff_agent_label(owner))
    if change.status != "claimed" or change.ticket is None or change.customer is None:
        return staff("support.staff.not_live")
    ticket, customer = change.ticket, change.customer
    log.info("support.claimed ticket=%s agent=%s", ticket.id, agent.id)
    TICKETS.labels(ticket.status.value).inc()
    label = support_screens.staff_agent_label(agent)
    await desk.post(ticket.user_id, staff("support.staff.claimed", agent=label))
    entries = await support.transcript(ticket.id, limit=support.config.transcript_on_claim)
    await desk.post(ticket.user_id, support_screens.transcript(staff, entries, await desk.agents_by_id(), support.hours))
    await desk.note(ticket, staff("support.staff.claimed", agent=label))
    await desk.refresh_card(ticket)
    await desk.sync_topic(ticket.user_id, ticket)
    tr = desk.customer_tr(customer)
    await desk.tell_customer(customer, tr("support.agent_joined", agent=support_screens.agent_label(tr, agent)))
    return None


async def transfer(desk: Desk, ticket_id: str, to: Agent, by: Agent) -> str | None:
    support, staff = desk.support, desk.staff_tr
    change = await support.transfer(ticket_id, to.id, by.id)
    if change.status == "same":
        return staff("support.staff.transfer_same", agent=support_screens.staff_agent_label(to))
    if change.status != "transferred" or change.ticket is None or change.customer is None:
        return staff("support.staff.not_live")
    ticket, customer = change.ticket, change.customer
    log.info("support.transferred ticket=%s to=%s", ticket.id, to.id)
    text = staff("support.staff.transferred", agent=support_screens.staff_agent_label(to),
                 by=support_screens.staff_agent_label(by))
    await desk.post(ticket.user_id, text)
    await desk.note(ticket, text)
    await desk.refresh_card(ticket)
    await desk.sync_topic(ticket.user_id, ticket)
    tr = desk.customer_tr(customer)
    await desk.tell_customer(customer, tr("support.transferred", agent=support_screens.agent_label(tr, to)))
    return None


async def after_resolve(desk: Desk, ticket: Ticket, customer: SupportCustomer | None, *, by: str,
                        agent: Agent | None = None, move_customer: bool = True) -> None:
    """Both sides are told; the topic is closed; the customer's banner goes. With
    `move_customer` (a staff update) the customer also lands on 首页."""
    staff = desk.staff_tr
    log.info("support.resolved ticket=%s by=%s", ticket.id, by)
    TICKETS.labels(ticket.status.value).inc()
    if by == "customer":
        text = staff("support.staff.closed_by_customer")
    elif by == "ban":
        text = staff("support.staff.closed_by_ban", agent=support_screens.staff_agent_label(agent))
    else:
        text = staff("support.staff.closed_by_agent", agent=support_screens.staff_agent_label(agent))
    await desk.post(ticket.user_id, text)
    await desk.note(ticket, text)
    await desk.refresh_card(ticket)
    await desk.sync_topic(ticket.user_id, ticket)
    await desk.remove_banner(ticket.user_id)
    if move_customer and customer is not None:
        tr = desk.customer_tr(customer)
        notice = (tr("support.ended_by_agent", agent=support_screens.agent_label(tr, agent)) if by != "ban"
                  else tr("support.ended_by_ban"))
        if by != "ban" and desk.support.config.reopen_minutes:
            notice += "\n" + tr("support.reopen_hint", minutes=desk.support.config.reopen_minutes)
        await desk.send_home(customer, notice)


async def after_reopen(desk: Desk, ticket: Ticket) -> None:
    staff = desk.staff_tr
    log.info("support.reopened ticket=%s", ticket.id)
    TICKETS.labels(ticket.status.value).inc()
    text = staff("support.staff.reopened")
    await desk.post(ticket.user_id, text)
    await desk.note(ticket, text)
    await desk.refresh_card(ticket)
    await desk.sync_topic(ticket.user_id, ticket)
