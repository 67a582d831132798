"""The staff group's side (F11): agents work in a forum supergroup (STAFF_CHAT_ID), one topic
per customer. What an agent writes in a customer's topic goes to the customer as the service
(their alias, or "客服"; never their account). Commands:

    /queue              waiting tickets, oldest first, with waiting time (anywhere in the group)
    /claim              take the topic's ticket (or 🙋 接单 on its card or in /queue)
    /transfer [agent]   hand it to another agent (alias, @username or id; buttons without one)
    /note text          an internal note: kept in the transcript, never relayed
    /quote [edition years [pack] [price]]   issue an order for the customer (buttons without args);
                        a price below QUOTE_FLOOR_PERCENT of the list waits for another agent's approval
    /invoiced [order]   R16: the invoice is issued; the customer is told
    /close              resolve the ticket; the customer lands on 首页
    /ban [reason], /unban   stop / resume relaying this customer
    /history            the customer's past tickets
    /alias [name]       how customers see you ("客服小李"); /alias - clears it
    /help               this list

Nothing said in the staff group ever reaches the customer flows (the router swallows it all).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

from aiogram import Bot, F, Router
from aiogram.filters import Command, CommandObject
from aiogram.types import CallbackQuery, Message
from aiogram.utils.callback_answer import CallbackAnswer

from bot.callbacks import StaffAction, StaffQuote
from bot.context import AppContext
from bot.filters import When
from bot.flows.base import show, unsafe_or
from bot.flows.support import lifecycle
from bot.flows.support.desk import Desk, content_kind, staff_texts
from bot.flows.support.quotes import catalog_quote, issue_quote, parse_quote_args, problem_text, quote_lines
from bot.screens import support as support_screens
from bot.screens.base import Screen
from services.quotes import QuoteNeedsApproval, QuoteProblem, QuoteProposals
from services.support import Agent, SupportCustomer, Ticket, TicketStatus
from services.text_input import TextRefused, clean_free_text, clean_line

log = logging.getLogger(__name__)
ALIAS_MAX = 20


async def in_staff_chat(event: Message | CallbackQuery, app: AppContext) -> bool:
    chat_id = app.settings.staff_chat_id
    if chat_id is None:
        return False
    if isinstance(event, CallbackQuery):
        return event.message is not None and event.message.chat.id == chat_id
    return event.chat.id == chat_id


@dataclass
class Topic:
    """A customer's topic, as a staff command sees it."""

    thread: int
    customer: SupportCustomer
    ticket: Ticket | None  # the customer's current ticket, live or resolved


@dataclass(frozen=True)
class LiveTopic:
    """A customer's topic whose ticket is live: what most staff commands act on."""

    thread: int
    customer: SupportCustomer
    ticket: Ticket


async def topic_of(message: Message, app: AppContext) -> Topic | None:
    thread = message.message_thread_id if message.is_topic_message else None
    if thread is None:
        return None
    customer_id = await app.support.topic_customer(message.chat.id, thread)
    if customer_id is None:
        return None
    customer, ticket = await app.support.current(customer_id)
    return Topic(thread, customer, ticket) if customer else None


async def agent_of(event: Message | CallbackQuery, app: AppContext) -> Agent:
    user = event.from_user
    assert user is not None  # staff updates come from a person
    return await app.support.register_agent(user.id, support_screens.display_name(user.first_name, user.last_name),
                                            user.username)


def router() -> Router:
    r = Router(name="support-staff")
    r.message.filter(in_staff_chat)
    r.edited_message.filter(in_staff_chat)
    r.callback_query.filter(in_staff_chat)

    async def in_topic(message: Message, app: AppContext) -> Topic | None:
        topic = await topic_of(message, app)
        if topic is None:
            await message.answer(staff_texts(app)("support.staff.outside_topic"))
        return topic

    async def in_live_topic(message: Message, app: AppContext) -> LiveTopic | None:
        """The topic the command was given in, when its ticket is live; else the agent is told why not."""
        topic = await in_topic(message, app)
        if topic is None:
            return None
        if topic.ticket is None or not topic.ticket.live:
            await message.answer(staff_texts(app)("support.staff.not_live"))
            return None
        return LiveTopic(topic.thread, topic.customer, topic.ticket)

    # --- anywhere in the group -----------------------------------------------------------

    @r.message(Command("queue"))
    async def queue(message: Message, app: AppContext, bot: Bot, desk: Desk) -> None:
        await agent_of(message, app)
        tickets = await app.support.queue()
        links = {}
        for ticket in tickets:
            customer = await app.support.customer(ticket.user_id)
            links[ticket.id] = desk.topic_link(customer.topic_id if customer else None)
        screen = support_screens.queue(desk.staff_tr, tickets, app.clock.now(), links)
        await message.answer(screen.text, reply_markup=screen.markup)

    @r.message(Command("help", "start"))
    async def help_(message: Message, app: AppContext, bot: Bot, desk: Desk) -> None:
        await agent_of(message, app)
        await message.answer(desk.staff_tr("support.staff.help"))

    @r.message(Command("alias"))
    async def alias(message: Message, command: CommandObject, app: AppContext, bot: Bot, desk: Desk) -> None:
        agent = await agent_of(message, app)
        staff = desk.staff_tr
        wanted = (command.args or "").strip()
        if not wanted:
            current = agent.alias or staff("support.agent_default")
            await message.answer(staff("support.staff.alias_usage", alias=current))
            return
        if wanted == "-":
            await app.support.set_alias(agent.id, None)
            await message.answer(staff("support.staff.alias_cleared", alias=staff("support.agent_default")))
            return
        try:  # customers see it: NFKC, no direction or invisible characters (services.text_input)
            wanted = clean_line(wanted, max_len=ALIAS_MAX)
        except TextRefused as refused:
            await message.answer(staff(unsafe_or(refused, "support.staff.alias_too_long"), max=ALIAS_MAX))
            return
        await app.support.set_alias(agent.id, wanted)
        await message.answer(staff("support.staff.alias_set", alias=wanted))

    # --- in a customer's topic -----------------------------------------------------------

    @r.message(Command("claim"))
    async def claim(message: Message, app: AppContext, bot: Bot, desk: Desk) -> None:
        agent = await agent_of(message, app)
        topic = await in_live_topic(message, app)
        if topic is None:
            return
        word = await lifecycle.claim(desk, topic.ticket.id, agent)
        if word:
            await message.answer(word)

    @r.message(Command("close"))
    async def close(message: Message, app: AppContext, bot: Bot, desk: Desk) -> None:
        agent = await agent_of(message, app)
        topic = await in_topic(message, app)
        if topic is None:
            return
        word = await resolve(desk, topic.ticket, agent)
        if word:
            await message.answer(word)

    @r.message(Command("note"))
    async def note(message: Message, command: CommandObject, app: AppContext, bot: Bot, desk: Desk) -> None:
        agent = await agent_of(message, app)
        topic = await in_topic(message, app)
        if topic is None:
            return
        try:
            text = clean_free_text(command.args or "")
        except TextRefused as refused:
            await message.answer(desk.staff_tr(unsafe_or(refused, "support.staff.note_usage")))
            return
        if topic.ticket is None:
            await message.answer(desk.staff_tr("support.staff.note_usage"))
            return
        await desk.note(topic.ticket, text, who="note", agent_id=agent.id)
        await message.answer(desk.staff_tr("support.staff.note_saved"))

    @r.message(Command("transfer"))
    async def transfer(message: Message, command: CommandObject, app: AppContext, bot: Bot,
                       desk: Desk) -> None:
        agent = await agent_of(message, app)
        topic = await in_live_topic(message, app)
        if topic is None:
            return
        ticket = topic.ticket
        staff = desk.staff_tr
        wanted = (command.args or "").strip()
        if not wanted:
            others = [a for a in await app.support.agents() if a.id != ticket.agent_id]
            screen = support_screens.transfer_choice(staff, ticket, others)
            await message.answer(screen.text, reply_markup=screen.markup)
            return
        target = await app.support.find_agent(wanted)
        if target is None:
            await message.answer(staff("support.staff.transfer_unknown", who=wanted))
            return
        word = await lifecycle.transfer(desk, ticket.id, target, agent)
        if word:
            await message.answer(word)

    @r.message(Command("ban"))
    async def ban(message: Message, command: CommandObject, app: AppContext, bot: Bot,
                  desk: Desk) -> None:
        agent = await agent_of(message, app)
        topic = await in_topic(message, app)
        if topic is None:
            return
        try:
            reason = clean_free_text(command.args or "", max_len=500) if (command.args or "").strip() else None
        except TextRefused as refused:
            await message.answer(desk.staff_tr(unsafe_or(refused, "support.staff.note_usage")))
            return
        change = await app.support.ban(topic.customer.user_id, agent_id=agent.id, reason=reason)
        if change.status == "already":
            await message.answer(desk.staff_tr("support.staff.already_banned"))
            return
        log.info("support.banned user=%s agent=%s", topic.customer.user_id, agent.id)
        await message.answer(desk.staff_tr("support.staff.banned"))
        if change.ticket is not None:
            await lifecycle.after_resolve(desk, change.ticket, change.customer, by="ban", agent=agent)

    @r.message(Command("unban"))
    async def unban(message: Message, app: AppContext, bot: Bot, desk: Desk) -> None:
        await agent_of(message, app)
        topic = await in_topic(message, app)
        if topic is None:
            return
        change = await app.support.unban(topic.customer.user_id)
        key = "support.staff.unbanned" if change.status == "unbanned" else "support.staff.not_banned"
        await message.answer(desk.staff_tr(key))

    @r.message(Command("history"))
    async def history(message: Message, app: AppContext, bot: Bot, desk: Desk) -> None:
        await agent_of(message, app)
        topic = await in_topic(message, app)
        if topic is None:
            return
        tickets = await app.support.history(topic.customer.user_id)
        text = support_screens.history(desk.staff_tr, topic.customer.name, tickets, await desk.agents_by_id(),
                                       app.support.hours)
        await message.answer(text)

    @r.message(Command("invoiced"))
    async def invoiced(message: Message, command: CommandObject, app: AppContext, bot: Bot, desk: Desk) -> None:
        agent = await agent_of(message, app)
        topic = await in_topic(message, app)
        if topic is None:
            return
        ticket = topic.ticket
        wanted = (command.args or "").strip()
        if ticket is None:
            await message.answer(desk.staff_tr("support.staff.invoiced_usage"))
            return
        if not wanted:
            waiting = [o for o in ticket.order_ids if o not in ticket.invoices_issued]
            if len(waiting) != 1:
                await message.answer(desk.staff_tr("support.staff.invoiced_usage"))
                return
            wanted = waiting[0]
        await message.answer(await mark_invoiced(desk, ticket, wanted, agent))

    @r.message(Command("quote"))
    async def quote_command(message: Message, command: CommandObject, app: AppContext, bot: Bot,
                            desk: Desk) -> None:
        agent = await agent_of(message, app)
        topic = await in_live_topic(message, app)
        if topic is None:
            return
        ticket = topic.ticket
        staff = desk.staff_tr
        args = (command.args or "").split()
        if not args:
            screen = support_screens.quote_editions(staff, app.catalog, ticket)
            await message.answer(screen.text, reply_markup=screen.markup)
            return
        try:
            edition, years, pack, price = parse_quote_args(app, args)
            told = await issue_quote(desk, topic.customer, ticket, edition=edition, years=years, pack=pack,
                                     price_fen=price, agent_id=agent.id)
        except QuoteNeedsApproval as below:  # a second agent must approve it (services.quotes)
            assert price is not None  # only a negotiated price can be below the floor
            proposal = await QuoteProposals(app.redis, app.clock).propose(
                ticket_id=ticket.id, user_id=topic.customer.user_id, agent_id=agent.id, edition=edition,
                years=years, pack=pack, price_fen=price, listed_fen=below.listed_fen)
            screen = support_screens.quote_approval(staff, proposal, agent, below.floor_fen,
                                                    app.settings.quote_floor_percent)
            await message.answer(screen.text, reply_markup=screen.markup)
            log.info("support.quote_proposed ticket=%s agent=%s price=%s listed=%s", ticket.id, agent.id, price,
                     below.listed_fen)
            return
        except QuoteProblem as problem:
            await message.answer(problem_text(staff, problem))
            return
        await message.answer(told)

    @r.message(When(F.text.startswith("/")))
    async def unknown_command(message: Message, app: AppContext, bot: Bot, desk: Desk) -> None:
        await agent_of(message, app)
        await message.answer(desk.staff_tr("support.staff.unknown_command"))

    # --- an agent's message in a customer's topic goes to the customer --------------------

    @r.message()
    async def relay(message: Message, app: AppContext, bot: Bot, desk: Desk) -> None:
        if message.from_user is None or message.from_user.is_bot or content_kind(message) is None:
            return  # service messages, other bots
        agent = await agent_of(message, app)
        topic = await topic_of(message, app)
        if topic is None:
            return  # the General topic or an unrelated one: staff talk among themselves
        staff = desk.staff_tr
        ticket = topic.ticket
        if topic.customer.banned:
            await message.answer(staff("support.staff.customer_banned"))
            return
        if ticket is None or not ticket.live:
            await message.answer(staff("support.staff.not_live_not_sent"))
            return
        if ticket.status is TicketStatus.PENDING:  # answering a waiting ticket claims it
            word = await lifecycle.claim(desk, ticket.id, agent)
            ticket = await app.support.ticket(ticket.id) or ticket
            if word and ticket.agent_id != agent.id:
                await message.answer(word)
                return
        elif ticket.agent_id != agent.id:
            owner = await app.support.agent(ticket.agent_id) if ticket.agent_id else None
            await message.answer(staff("support.staff.not_owner", agent=support_screens.staff_agent_label(owner)))
            return
        await desk.relay_from_agent(message, topic.customer, ticket, agent)

    @r.edited_message()
    async def edited(message: Message, app: AppContext, bot: Bot, desk: Desk) -> None:
        if message.from_user is None or message.from_user.is_bot:
            return
        topic = await topic_of(message, app)
        if topic is None:
            return
        agent = await app.support.agent(message.from_user.id)
        tr = desk.customer_tr(topic.customer)
        await desk.mirror_edit(message, prefix=support_screens.agent_prefix(tr, agent))

    # --- buttons: the intake card, /queue, /transfer, the quote wizard ------------------

    @r.callback_query(StaffAction.filter(F.action == "claim"))
    async def claim_button(query: CallbackQuery, callback_data: StaffAction, app: AppContext, bot: Bot,
                           callback_answer: CallbackAnswer, desk: Desk) -> None:
        agent = await agent_of(query, app)
        word = await lifecycle.claim(desk, callback_data.ticket, agent)
        callback_answer.text = word or desk.staff_tr("support.staff.claimed_short")

    @r.callback_query(StaffAction.filter(F.action == "close"))
    async def close_button(query: CallbackQuery, callback_data: StaffAction, app: AppContext, bot: Bot,
                           callback_answer: CallbackAnswer, desk: Desk) -> None:
        agent = await agent_of(query, app)
        ticket = await app.support.ticket(callback_data.ticket)
        word = await resolve(desk, ticket, agent)
        callback_answer.text = word

    @r.callback_query(StaffAction.filter(F.action == "invoiced"))
    async def invoiced_button(query: CallbackQuery, callback_data: StaffAction, app: AppContext, bot: Bot,
                              callback_answer: CallbackAnswer, desk: Desk) -> None:
        agent = await agent_of(query, app)
        ticket = await app.support.ticket(callback_data.ticket)
        if ticket is None:
            callback_answer.text = desk.staff_tr("support.staff.not_live")
            return
        text = await mark_invoiced(desk, ticket, callback_data.ref, agent)
        await desk.post(ticket.user_id, text)

    @r.callback_query(StaffAction.filter(F.action == "transfer"))
    async def transfer_button(query: CallbackQuery, callback_data: StaffAction, app: AppContext, bot: Bot,
                              callback_answer: CallbackAnswer, desk: Desk) -> None:
        await agent_of(query, app)
        ticket = await app.support.ticket(callback_data.ticket)
        if ticket is None or not ticket.live:
            callback_answer.text = desk.staff_tr("support.staff.not_live")
            return
        others = [a for a in await app.support.agents() if a.id != ticket.agent_id]
        screen = support_screens.transfer_choice(desk.staff_tr, ticket, others)
        await desk.post(ticket.user_id, screen.text, screen.markup)

    @r.callback_query(StaffAction.filter(F.action == "transfer_to"))
    async def transfer_to(query: CallbackQuery, callback_data: StaffAction, app: AppContext, bot: Bot,
                          callback_answer: CallbackAnswer, desk: Desk) -> None:
        agent = await agent_of(query, app)
        target = await app.support.agent(int(callback_data.ref)) if callback_data.ref.isdigit() else None
        if target is None:
            callback_answer.text = desk.staff_tr("support.staff.transfer_unknown", who=callback_data.ref)
            return
        callback_answer.text = await lifecycle.transfer(desk, callback_data.ticket, target, agent)

    @r.callback_query(StaffAction.filter(F.action == "approve"))
    async def approve_quote(query: CallbackQuery, callback_data: StaffAction, app: AppContext, bot: Bot,
                            callback_answer: CallbackAnswer, desk: Desk) -> None:
        """A second agent lets a price below the floor through: the quote is issued once."""
        agent = await agent_of(query, app)
        staff, proposals = desk.staff_tr, QuoteProposals(app.redis, app.clock)
        proposal = await proposals.get(callback_data.ref)
        if proposal is not None and proposal.agent_id == agent.id:
            callback_answer.text, callback_answer.show_alert = staff("support.staff.quote_own_approval"), True
            return
        proposal = await proposals.take(callback_data.ref) if proposal is not None else None
        if proposal is None:
            callback_answer.text = staff("support.staff.quote_approval_gone")
            return
        ticket = await app.support.ticket(proposal.ticket_id)
        customer = await app.support.customer(proposal.user_id)
        if ticket is None or not ticket.live or customer is None:
            await show(query, Screen(staff("support.staff.not_live")))
            return
        try:
            told = await issue_quote(desk, customer, ticket, edition=proposal.edition, years=proposal.years,
                                     pack=proposal.pack, price_fen=proposal.price_fen, agent_id=proposal.agent_id,
                                     approved_by=agent.id)
        except QuoteProblem as problem:
            told = problem_text(staff, problem)
        await show(query, Screen(told))

    @r.callback_query(StaffAction.filter(F.action == "withdraw"))
    async def withdraw_quote(query: CallbackQuery, callback_data: StaffAction, app: AppContext, bot: Bot,
                             callback_answer: CallbackAnswer, desk: Desk) -> None:
        agent = await agent_of(query, app)
        proposal = await QuoteProposals(app.redis, app.clock).take(callback_data.ref)
        if proposal is None:
            callback_answer.text = desk.staff_tr("support.staff.quote_approval_gone")
            return
        log.info("support.quote_withdrawn ticket=%s by=%s", proposal.ticket_id, agent.id)
        await show(query, Screen(desk.staff_tr("support.staff.quote_withdrawn",
                                               agent=support_screens.staff_agent_label(agent))))

    @r.callback_query(StaffAction.filter(F.action == "quote"))
    async def quote_button(query: CallbackQuery, callback_data: StaffAction, app: AppContext, bot: Bot,
                           callback_answer: CallbackAnswer, desk: Desk) -> None:
        await agent_of(query, app)
        ticket = await app.support.ticket(callback_data.ticket)
        if ticket is None or not ticket.live:
            callback_answer.text = desk.staff_tr("support.staff.not_live")
            return
        screen = support_screens.quote_editions(desk.staff_tr, app.catalog, ticket)
        await desk.post(ticket.user_id, screen.text, screen.markup)

    @r.callback_query(StaffQuote.filter())
    async def quote_step(query: CallbackQuery, callback_data: StaffQuote, app: AppContext, bot: Bot,
                         callback_answer: CallbackAnswer, desk: Desk) -> None:
        agent = await agent_of(query, app)
        staff, catalog, data = desk.staff_tr, app.catalog, callback_data
        ticket = await app.support.ticket(data.ticket)
        if data.step == "x":
            await show(query, Screen(staff("support.staff.quote_cancelled")))
            return
        if ticket is None or not ticket.live:
            callback_answer.text = staff("support.staff.not_live")
            return
        edition = catalog.edition(data.edition)
        pack = None if data.addon in ("", "-") else data.addon
        if (edition is None or not edition.sellable or (data.step != "y" and data.years not in catalog.years)
                or (pack is not None and catalog.pack(pack) is None)):
            callback_answer.text = staff("support.staff.quote_stale")
            await show(query, support_screens.quote_editions(staff, catalog, ticket))
            return
        if data.step == "y":
            await show(query, support_screens.quote_years(staff, catalog, ticket, edition.code))
        elif data.step == "p":
            await show(query, support_screens.quote_packs(staff, catalog, ticket, edition.code, data.years))
        elif data.step == "c":
            q = catalog_quote(catalog, edition.code, data.years, pack)
            await show(query, support_screens.quote_confirm(staff, ticket, edition.code, data.years, pack,
                                                            quote_lines(staff, q), q.total_fen))
        elif data.step == "s":
            customer = await app.support.customer(ticket.user_id)
            if customer is None:
                callback_answer.text = staff("support.staff.not_live")
                return
            try:
                told = await issue_quote(desk, customer, ticket, edition=edition.code, years=data.years, pack=pack,
                                         price_fen=None, agent_id=agent.id)
            except QuoteProblem as problem:
                told = problem_text(staff, problem)
            await show(query, Screen(told))

    return r


async def resolve(desk: Desk, ticket: Ticket | None, agent: Agent) -> str | None:
    """/close and ✅ 结束: the ticket is resolved, both sides told, the customer sent to 首页."""
    if ticket is None or not ticket.live:
        return desk.staff_tr("support.staff.not_live")
    change = await desk.support.resolve(ticket.id, by="agent", agent_id=agent.id)
    if change.status != "resolved_now" or change.ticket is None:
        return desk.staff_tr("support.staff.not_live")
    await lifecycle.after_resolve(desk, change.ticket, change.customer, by="agent", agent=agent)
    return None


async def mark_invoiced(desk: Desk, ticket: Ticket, order_id: str, agent: Agent) -> str:
    """R16: the agent has issued the invoice; the customer is told. Returns the word for staff."""
    staff = desk.staff_tr
    change = await desk.support.mark_invoice_issued(ticket.id, order_id, agent.id)
    if change.status == "already":
        return staff("support.staff.invoiced_already", order_id=order_id)
    if change.status != "issued" or change.customer is None or change.ticket is None:
        return staff("support.staff.invoiced_usage")
    tr = desk.customer_tr(change.customer)
    told = await desk.tell_customer(change.customer, tr("support.invoice_issued", order_id=order_id))
    await desk.note(change.ticket, staff("support.staff.invoiced_done", order_id=order_id))
    await desk.refresh_card(change.ticket)
    log.info("support.invoice_issued ticket=%s order=%s", ticket.id, order_id)
    return staff("support.staff.invoiced_done" if told else "support.staff.customer_blocked", order_id=order_id)
