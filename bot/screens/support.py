"""Customer-service screens (F11, R16, R17): the customer's side, and the staff group's posts
(intake card, queue, transcript, history, quote wizard). Pure functions of data; texts come
from config/locales/support.<lang>.toml. Staff posts use the staff language (support.toml)."""
from __future__ import annotations

from datetime import datetime

from aiogram.types import InlineKeyboardMarkup

from bot.callbacks import Nav, OrderAction, StaffAction, StaffQuote, SupportAction
from bot.screens import edition_name, nav_row, pack_name
from bot.screens.base import Screen, button, inline, link
from config.texts import Translator
from services.catalog import Catalog, format_fen
from services.orders import Order
from services.quotes import QuoteProposal
from services.support import (
    Agent,
    Intake,
    IntakeCart,
    SupportCustomer,
    Ticket,
    TicketKind,
    TicketStatus,
    TranscriptEntry,
)
from services.support_config import SupportConfig, WorkingHours
from services.text_input import neutralise

TOPIC_NAME_MAX = 128  # Bot API limit for a forum topic's name
MESSAGE_MAX = 4096
STATUS_ICONS = {TicketStatus.PENDING: "🟡", TicketStatus.OPEN: "🟢", TicketStatus.RESOLVED: "⚪"}


def hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def working_hours(tr: Translator, config: SupportConfig) -> str:
    """"每天 09:00–21:00" or "周一、周二… 09:00–18:00；周六 10:00–12:00"."""
    parts = []
    for block in config.hours:
        span = f"{hhmm(block.open)}–{hhmm(block.close)}"
        days = (tr("support.days_every") if len(block.days) == 7
                else tr("support.days_sep").join(tr(f"support.day{d}") for d in block.days))
        parts.append(tr("support.hours_block", days=days, span=span))
    return tr("support.blocks_sep").join(parts)


def local_moment(moment: datetime, hours: WorkingHours) -> str:
    return hours.local(moment).strftime("%m-%d %H:%M")


def agent_label(tr: Translator, agent: Agent | None) -> str:
    """What a customer sees of an agent: the alias, or "客服"; never the account."""
    return agent.alias if agent and agent.alias else tr("support.agent_default")


def staff_agent_label(agent: Agent | None, fallback: str = "?") -> str:
    """What staff see of an agent: the alias with the account name."""
    if agent is None:
        return fallback
    return f"{agent.alias}（{agent.name}）" if agent.alias else agent.name


# --- the customer's side -----------------------------------------------------------------------


def cart_text(tr: Translator, cart: IntakeCart | None) -> str | None:
    if cart is None or not cart.edition:
        return None
    parts = [edition_name(tr, cart.edition)]
    if cart.years:
        parts[0] += tr("support.cart_years", years=cart.years)
    if cart.pack_chosen and cart.pack:
        parts.append(pack_name(tr, cart.pack))
    text = " · ".join(parts)
    if cart.total_fen is not None:
        text += tr("support.cart_total", total=format_fen(cart.total_fen))
    return text


def ticket_screen(
    tr: Translator,
    ticket: Ticket,
    *,
    config: SupportConfig,
    now: datetime,
    agent: Agent | None,
    ahead: int | None,
) -> Screen:
    """The 联系客服 step (Menu.contact) while a ticket is live: what was asked, when an agent
    answers, and how to talk or end."""
    intake = ticket.intake
    lines = [tr(f"support.title_{ticket.kind.value}")]
    cart = cart_text(tr, intake.cart)
    if ticket.kind is TicketKind.INVOICE and intake.order is not None:
        lines.append(tr("support.about_order", order_id=intake.order.id,
                        edition=edition_name(tr, intake.order.edition), years=intake.order.years,
                        total=format_fen(intake.order.total_fen)))
    elif ticket.kind is TicketKind.CONSULT and cart:
        lines.append(tr("support.about_cart", cart=cart))
    hours = config.hours_of_work
    if ticket.status is TicketStatus.OPEN:
        lines.append(tr("support.serving", agent=agent_label(tr, agent)))
    elif hours.is_open(now):
        lines.append(tr("support.received", minutes=config.reply_minutes))
        if ahead:
            lines.append(tr("support.queue_ahead", ahead=ahead))
    else:
        opening = hours.next_open(now)
        lines.append(tr("support.after_hours", hours=working_hours(tr, config),
                        when=local_moment(opening, hours) if opening else tr("support.soon")))
    lines.append("")
    lines.append(tr("support.how_invoice" if ticket.kind is TicketKind.INVOICE else "support.how"))
    markup = inline([button(tr("support.btn_end"), SupportAction(action="end"))], nav_row(tr))
    return Screen("\n".join(lines), markup)


def direct_contact(tr: Translator, config: SupportConfig, kind: TicketKind, order_id: str | None = None) -> Screen:
    """联系客服, 购买咨询 or 开具发票 when the bot has no staff group: how to reach the service
    (config/support.toml [contact]) and when; never an invitation to write here."""
    contact = config.contact
    lines = [tr(f"support.title_{kind.value}"), tr("support.direct_hours", hours=working_hours(tr, config))]
    if contact.phone:
        lines.append(tr("support.direct_phone", phone=contact.phone))
    if contact.email:
        lines.append(tr("support.direct_email", email=contact.email))
    if contact.page:
        lines.append(tr("support.direct_page", url=contact.page))
    lines.append("")
    if kind is TicketKind.INVOICE:
        lines.append(tr("support.direct_invoice", order_id=order_id) if order_id else tr("support.direct_contact"))
    else:
        lines.append(tr(f"support.direct_{kind.value}"))
    rows = [[link(tr("support.btn_contact_page"), contact.page)]] if contact.page else []
    return Screen("\n".join(lines), inline(*rows, nav_row(tr)))


def banned(tr: Translator) -> Screen:
    return Screen(tr("support.banned"), inline(nav_row(tr)))


def banner(tr: Translator) -> Screen:
    """Pinned in the customer's chat while a ticket is live: a reminder, not a second copy of
    the ticket screen (which carries 结束咨询)."""
    return Screen(tr("support.banner"))


def agent_prefix(tr: Translator, agent: Agent | None) -> str:
    return tr("support.agent_prefix", agent=agent_label(tr, agent))


def quote_offer(tr: Translator, order: Order, *, minutes: int, url: str | None, agent: Agent | None = None) -> Screen:
    """An order an agent issued (F11): its lines and total, then how to pay."""
    lines = [tr("support.quote_offer", order_id=order.id, agent=agent_label(tr, agent))]
    for line in order.lines:
        label = (tr("buy.line_edition", name=edition_name(tr, line.code), years=line.quantity)
                 if line.kind == "edition" else pack_name(tr, line.code))
        lines.append(tr("buy.confirm_line", label=label, amount=format_fen(line.amount_fen)))
    lines.append(tr("buy.confirm_total", total=format_fen(order.total_fen)))
    lines.append(tr("buy.confirm_contracts", contracts=f"{order.contracts:,}"))
    lines.append("")
    if url:
        lines.append(tr("support.quote_pay_web", minutes=minutes, url=url))
        rows = [[link(tr("support.btn_pay_web"), url)]]
    else:
        lines.append(tr("support.quote_pay_chat", minutes=minutes))
        rows = [[button(tr("btn.pay"), OrderAction(action="pay", order_id=order.id))]]
    rows.append([button(tr("btn.my_orders"), Nav(to="orders"))])
    return Screen("\n".join(lines), inline(*rows))


# --- the staff group -------------------------------------------------------------------------


def display_name(first_name: str, last_name: str | None = None) -> str:
    """A Telegram name as staff see it: whatever its owner put in it, without the direction,
    zero-width and control characters (services.text_input.neutralise)."""
    name = " ".join(part for part in (first_name, last_name) if part)
    return " ".join(neutralise(name).split()) or "?"


def topic_name(tr: Translator, customer: SupportCustomer, status: TicketStatus | None) -> str:
    icon = STATUS_ICONS.get(status, "⚪") if status else "⚪"
    name = tr("support.staff.topic_name", icon=icon, name=customer.name or "?", user_id=customer.user_id)
    return name[:TOPIC_NAME_MAX]


def where_label(tr: Translator, where: str | None) -> str:
    key = "support.where." + (where or "home").replace(":", "_").lower()
    try:
        return tr(key)
    except KeyError:
        return where or tr("support.where.home")


def intake_card(
    tr: Translator, ticket: Ticket, *, agent: Agent | None, hours: WorkingHours, invoiced: dict[str, datetime]
) -> Screen:
    intake: Intake = ticket.intake
    username = f" (@{intake.username})" if intake.username else ""
    lines = [
        tr("support.staff.card_title", ticket=ticket.id, kind=tr(f"support.kind_{ticket.kind.value}")),
        tr("support.staff.card_customer", name=intake.name, username=username, user_id=ticket.user_id,
           lang=tr(f"support.staff.lang_{intake.lang}")),
        tr("support.staff.card_phone", phone=intake.phone_masked) if intake.phone_masked
        else tr("support.staff.card_no_phone"),
    ]
    for ent in intake.enterprises:
        state = tr("support.staff.verified" if ent.verified else "support.staff.unverified")
        edition = ""
        if ent.edition and ent.edition != "experience":
            expiry = hours.local(ent.expires_at).strftime("%Y-%m-%d") if ent.expires_at else "—"
            edition = tr("support.staff.card_edition", edition=edition_name(tr, ent.edition), expiry=expiry)
        lines.append(tr("support.staff.card_enterprise", name=ent.name, state=state, edition=edition))
    if intake.enterprise_name and intake.enterprise_name not in {e.name for e in intake.enterprises}:
        lines.append(tr("support.staff.card_enterprise_typed", name=intake.enterprise_name))
    cart = cart_text(tr, intake.cart)
    if cart:
        lines.append(tr("support.staff.card_cart", cart=cart))
    if intake.order is not None:
        order = intake.order
        pack = f" · {pack_name(tr, order.pack)}" if order.pack else ""
        lines.append(tr("support.staff.card_order", order_id=order.id, edition=edition_name(tr, order.edition),
                        years=order.years, pack=pack, total=format_fen(order.total_fen),
                        status=tr(f"status.{order.status}")))
        if order.enterprise_name:
            lines.append(tr("support.staff.card_order_enterprise", name=order.enterprise_name))
        if order.id in invoiced:
            lines.append(tr("support.staff.card_invoiced", at=local_moment(invoiced[order.id], hours)))
    lines.append(tr("support.staff.card_where", where=where_label(tr, intake.where)))
    lines.append(status_line(tr, ticket, agent, hours))
    lines.append("")
    lines.append(tr("support.staff.card_hint"))
    return Screen("\n".join(lines), card_buttons(tr, ticket))


def status_line(tr: Translator, ticket: Ticket, agent: Agent | None, hours: WorkingHours) -> str:
    if ticket.status is TicketStatus.PENDING:
        return tr("support.staff.status_pending", at=local_moment(ticket.waiting_since, hours))
    if ticket.status is TicketStatus.OPEN:
        return tr("support.staff.status_open", agent=staff_agent_label(agent))
    return tr("support.staff.status_resolved", by=tr(f"support.staff.by_{ticket.resolved_by or 'agent'}"))


def card_buttons(tr: Translator, ticket: Ticket) -> InlineKeyboardMarkup | None:
    if not ticket.live:
        return None
    rows = []
    if ticket.status is TicketStatus.PENDING:
        rows.append([button(tr("support.staff.btn_claim"), StaffAction(action="claim", ticket=ticket.id))])
    row = [button(tr("support.staff.btn_quote"), StaffAction(action="quote", ticket=ticket.id)),
           button(tr("support.staff.btn_transfer"), StaffAction(action="transfer", ticket=ticket.id))]
    rows.append(row)
    if ticket.kind is TicketKind.INVOICE:
        for order_id in ticket.order_ids:
            if order_id not in ticket.invoices_issued:
                rows.append([button(tr("support.staff.btn_invoiced", order_id=order_id),
                                    StaffAction(action="invoiced", ticket=ticket.id, ref=order_id))])
    rows.append([button(tr("support.staff.btn_close"), StaffAction(action="close", ticket=ticket.id))])
    return inline(*rows)


def waited(tr: Translator, since: datetime, now: datetime) -> str:
    minutes = max(0, int((now - since).total_seconds() // 60))
    if minutes < 60:
        return tr("support.staff.waited_minutes", minutes=minutes)
    return tr("support.staff.waited_hours", hours=minutes // 60, minutes=minutes % 60)


def queue(tr: Translator, tickets: list[Ticket], now: datetime, links: dict[str, str | None]) -> Screen:
    if not tickets:
        return Screen(tr("support.staff.queue_empty"))
    lines = [tr("support.staff.queue_title", count=len(tickets))]
    rows = []
    for n, ticket in enumerate(tickets, 1):
        lines.append(tr("support.staff.queue_line", n=n, name=ticket.intake.name,
                        kind=tr(f"support.kind_{ticket.kind.value}"), ticket=ticket.id,
                        waited=waited(tr, ticket.waiting_since, now)))
        row = [button(tr("support.staff.btn_claim_who", n=n, name=ticket.intake.name[:20]),
                      StaffAction(action="claim", ticket=ticket.id))]
        if links.get(ticket.id):
            row.append(link(tr("support.staff.btn_open_topic"), links[ticket.id] or ""))
        rows.append(row)
    return Screen(clip("\n".join(lines)), inline(*rows[:50]))


def transcript(tr: Translator, entries: list[TranscriptEntry], agents: dict[int, Agent], hours: WorkingHours) -> str:
    if not entries:
        return tr("support.staff.transcript_empty")
    lines = [tr("support.staff.transcript_title", count=len(entries))]
    for entry in entries:
        if entry.who == "agent":
            who = staff_agent_label(agents.get(entry.agent_id or 0), tr("support.staff.who_agent"))
        else:
            who = tr(f"support.staff.who_{entry.who}")
        body = entry.text
        if entry.kind != "text":
            media = tr(f"support.staff.media_{entry.kind}") if entry.kind in MEDIA_KINDS else f"[{entry.kind}]"
            body = f"{media} {body}".strip()
        lines.append(tr("support.staff.transcript_line", at=local_moment(entry.at, hours)[6:], who=who, text=body))
    return clip("\n".join(lines), keep="end")


MEDIA_KINDS = ("photo", "document", "voice", "video", "sticker", "audio", "animation", "video_note")


def history(tr: Translator, name: str, tickets: list[Ticket], agents: dict[int, Agent], hours: WorkingHours) -> str:
    if not tickets:
        return tr("support.staff.history_empty", name=name)
    lines = [tr("support.staff.history_title", name=name, count=len(tickets))]
    for ticket in tickets:
        agent = staff_agent_label(agents.get(ticket.agent_id or 0), "—") if ticket.agent_id else "—"
        lines.append(tr("support.staff.history_line", ticket=ticket.id, kind=tr(f"support.kind_{ticket.kind.value}"),
                        at=local_moment(ticket.created_at, hours), status=tr(f"support.staff.state_{ticket.status.value}"),
                        agent=agent, messages=ticket.messages))
    return clip("\n".join(lines))


def clip(text: str, keep: str = "start") -> str:
    if len(text) <= MESSAGE_MAX:
        return text
    return text[:MESSAGE_MAX - 1] + "…" if keep == "start" else "…" + text[-(MESSAGE_MAX - 1):]


def transfer_choice(tr: Translator, ticket: Ticket, agents: list[Agent]) -> Screen:
    if not agents:
        return Screen(tr("support.staff.transfer_none"))
    rows = [[button(staff_agent_label(a)[:40], StaffAction(action="transfer_to", ticket=ticket.id, ref=str(a.id)))]
            for a in agents[:30]]
    return Screen(tr("support.staff.transfer_choose"), inline(*rows))


# --- the quote wizard (F11) -------------------------------------------------------------------


def quote_editions(tr: Translator, catalog: Catalog, ticket: Ticket) -> Screen:
    rows = [[button(f"{edition_name(tr, e.code)} · {format_fen(e.price_per_year_fen)}",
                    StaffQuote(ticket=ticket.id, step="y", edition=e.code))] for e in catalog.sellable_editions]
    rows.append([button(tr("support.staff.btn_cancel"), StaffQuote(ticket=ticket.id, step="x"))])
    return Screen(tr("support.staff.quote_edition"), inline(*rows))


def quote_years(tr: Translator, catalog: Catalog, ticket: Ticket, edition: str) -> Screen:
    ed = catalog.edition(edition)
    assert ed is not None
    rows = [[button(tr("buy.years_button", years=y, price=format_fen(ed.price_per_year_fen * y)),
                    StaffQuote(ticket=ticket.id, step="p", edition=edition, years=y))] for y in catalog.years]
    rows.append([button(tr("support.staff.btn_cancel"), StaffQuote(ticket=ticket.id, step="x"))])
    return Screen(tr("support.staff.quote_years", edition=edition_name(tr, edition)), inline(*rows))


def quote_packs(tr: Translator, catalog: Catalog, ticket: Ticket, edition: str, years: int) -> Screen:
    rows = [[button(tr("pack.none"), StaffQuote(ticket=ticket.id, step="c", edition=edition, years=years, addon="-"))]]
    rows += [[button(tr("buy.pack_button", name=pack_name(tr, p.code), price=format_fen(p.price_fen)),
                     StaffQuote(ticket=ticket.id, step="c", edition=edition, years=years, addon=p.code))]
             for p in catalog.addon_packs]
    rows.append([button(tr("support.staff.btn_cancel"), StaffQuote(ticket=ticket.id, step="x"))])
    return Screen(tr("support.staff.quote_pack", edition=edition_name(tr, edition), years=years), inline(*rows))


def quote_confirm(tr: Translator, ticket: Ticket, edition: str, years: int, pack: str | None,
                  lines: list[tuple[str, int]], total_fen: int) -> Screen:
    text = [tr("support.staff.quote_confirm_title")]
    text += [tr("buy.confirm_line", label=label, amount=format_fen(amount)) for label, amount in lines]
    text.append(tr("buy.confirm_total", total=format_fen(total_fen)))
    text.append("")
    text.append(tr("support.staff.quote_negotiate", edition=edition, years=years, pack=pack or "none"))
    markup = inline(
        [button(tr("support.staff.btn_send_quote"),
                StaffQuote(ticket=ticket.id, step="s", edition=edition, years=years, addon=pack or "-"))],
        [button(tr("support.staff.btn_cancel"), StaffQuote(ticket=ticket.id, step="x"))],
    )
    return Screen("\n".join(text), markup)


def quote_approval(tr: Translator, proposal: QuoteProposal, proposer: Agent | None, floor_fen: int,
                   floor_percent: int) -> Screen:
    """A quote below the floor, in the customer's topic: another agent approves or withdraws it."""
    text = tr("support.staff.quote_needs_approval_card", agent=staff_agent_label(proposer),
              edition=edition_name(tr, proposal.edition), years=proposal.years,
              pack=pack_name(tr, proposal.pack) if proposal.pack else tr("support.staff.quote_no_pack"),
              price=format_fen(proposal.price_fen), listed=format_fen(proposal.listed_fen),
              floor=format_fen(floor_fen), percent=floor_percent)
    markup = inline(
        [button(tr("support.staff.btn_approve_quote", price=format_fen(proposal.price_fen)),
                StaffAction(action="approve", ticket=proposal.ticket_id, ref=proposal.id))],
        [button(tr("support.staff.btn_withdraw_quote"),
                StaffAction(action="withdraw", ticket=proposal.ticket_id, ref=proposal.id))],
    )
    return Screen(text, markup)
