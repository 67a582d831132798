"""Agent quotes (F11, item 7 of the hand-off): an agent issues an order for the customer from
their topic — edition, years, add-on pack, and an optional negotiated price — and the
consultation ends in a sale.

- The order is created with channel `consultation` (services.orders).
- A negotiated price is spread over the quote's lines in proportion to their list amounts
  (services.support.negotiated_lines), so the order's lines, the invoice's prices and every
  screen add up to it; the list total is kept in the quote record (services.support.QuoteRecord).
- Within the chat limit (and for an edition the chat may sell, R2) the customer gets an in-chat
  invoice; otherwise the web checkout link (F12, `app.checkout.link_for_order`).
- When it is paid, the topic is told at once: by TellStaffOfPayments (a message middleware)
  for an in-chat payment, by the payment notice for a web one; a scheduler job
  (`check_quotes`) is the safety net, and tells of quotes that lapsed.
"""
from __future__ import annotations

import logging
import re
import secrets
import unicodedata
from collections.abc import Awaitable, Callable
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from aiogram import BaseMiddleware
from aiogram.types import Message, TelegramObject

from bot.context import AppContext
from bot.flows.payment import send_invoice
from bot.flows.support.desk import Desk
from bot.screens import edition_name, local_date, pack_name
from bot.screens import support as support_screens
from config.texts import Translator
from services.catalog import Cart, Catalog, Quote, format_fen, quote
from services.orders import Channel, Order, OrderStatus
from services.quotes import QuoteProblem, customer_enterprise, price_quote
from services.support import QuoteRecord, SupportCustomer, Ticket

log = logging.getLogger(__name__)

NO_PACK = {"-", "none", "no", "无", "不加购"}  # never a number: a number is a price
YEARS = re.compile(r"^(\d+)\s*(年|y|yr|yrs|year|years)?$", re.IGNORECASE)
# Yuan, ASCII digits after NFKC: 80000, 80,000 (groups of three), 80000.5, 0.01; at most ten
# digits before the point and two after. No sign, exponent, NaN or Infinity.
AMOUNT = re.compile(r"(?:0|[1-9][0-9]{0,9}|[1-9][0-9]{0,2}(?:,[0-9]{3}){1,3})(?:\.[0-9]{1,2})?")


def parse_price(text: str) -> int | None:
    """"80000", "¥80,000", "80000.50元", "８００００" → fen; None when the text is not an amount
    written plainly ("1e5", "-5", "80000.555", "8,0000", "NaN"). Zero parses: price_quote refuses it."""
    cleaned = unicodedata.normalize("NFKC", text).strip().removeprefix("¥").removesuffix("元").strip()
    if not AMOUNT.fullmatch(cleaned):
        return None
    try:
        return int(Decimal(cleaned.replace(",", "")) * 100)
    except InvalidOperation:  # pragma: no cover - the pattern already says it is a number
        return None


def looks_like_amount(token: str) -> bool:
    """A token meant as a price (a digit, sign, currency sign or point first, or 元 last): parsed as one, so
    nonsense such as "1e5" or "-1" is refused as a price, never read as a pack."""
    text = unicodedata.normalize("NFKC", token.strip())
    return text[:1].isdigit() or text[:1] in "+-¥.," or text.endswith("元")


def _names(app: AppContext, prefix: str, code: str) -> set[str]:
    return {code.casefold()} | {label.casefold() for label in app.texts.all_labels(f"{prefix}.{code}")}


def parse_quote_args(app: AppContext, args: list[str]) -> tuple[str, int, str | None, int | None]:
    """`/quote <edition> <years> [pack] [price]` → (edition, years, pack, price fen or None).
    Editions and packs by code or by name in any language (旗舰版, flagship)."""
    catalog = app.catalog
    if len(args) < 2:
        raise QuoteProblem("support.staff.quote_usage")
    wanted = args[0].casefold()
    edition = next((e.code for e in catalog.sellable_editions if wanted in _names(app, "edition", e.code)), None)
    if edition is None:
        codes = ", ".join(e.code for e in catalog.sellable_editions)
        raise QuoteProblem("support.staff.quote_bad_edition", value=args[0], codes=codes)
    match = YEARS.match(args[1])
    if match is None or int(match.group(1)) not in catalog.years:
        raise QuoteProblem("support.staff.quote_bad_years", value=args[1],
                           years=", ".join(str(y) for y in catalog.years))
    years = int(match.group(1))
    rest = args[2:]
    if len(rest) > 2:
        raise QuoteProblem("support.staff.quote_usage")
    pack: str | None = None
    price: int | None = None
    if rest:
        token = rest[0].casefold()
        found = next((p.code for p in catalog.addon_packs if token in _names(app, "pack", p.code)), None)
        if found is not None or token in NO_PACK:
            pack = found
        elif len(rest) == 1 and looks_like_amount(token):
            rest.insert(0, "-")  # `/quote flagship 1 80000`: a price without a pack ("0" too: refused as a price)
        else:
            codes = ", ".join(["none"] + [p.code for p in catalog.addon_packs])
            raise QuoteProblem("support.staff.quote_bad_pack", value=rest[0], codes=codes)
    if len(rest) == 2:
        price = parse_price(rest[1])
        if price is None:
            raise QuoteProblem("support.staff.quote_bad_amount", value=rest[1])
    return edition, years, pack, price


def quote_lines(tr: Translator, q: Quote) -> list[tuple[str, int]]:
    return [((tr("buy.line_edition", name=edition_name(tr, line.code), years=line.quantity)
              if line.kind == "edition" else pack_name(tr, line.code)), line.amount_fen) for line in q.lines]


def catalog_quote(catalog: Catalog, edition: str, years: int, pack: str | None) -> Quote:
    """The list price of an edition, years and pack (the wizard's confirmation)."""
    return quote(catalog, Cart(edition=edition, years=years, pack=pack, pack_chosen=True))


def problem_text(staff: Translator, problem: QuoteProblem) -> str:
    """The refusal in the staff language: edition codes and dates as the agent reads them."""
    values = {key: local_date(value, staff) if isinstance(value, datetime)
              else edition_name(staff, value) if key in ("current", "edition") and value else value
              for key, value in problem.values.items()}
    return staff(problem.key, **values)


async def issue_quote(desk: Desk, customer: SupportCustomer, ticket: Ticket, *, edition: str, years: int,
                      pack: str | None, price_fen: int | None, agent_id: int, approved_by: int | None = None) -> str:
    """Create the consultation order and send it to the customer; returns what to tell staff.
    Priced for the customer's enterprise when it is known (services.quotes); raises
    QuoteProblem when it cannot be made for it, QuoteNeedsApproval for a price below the floor
    that no second agent (`approved_by`) approved."""
    app, staff = desk.app, desk.staff_tr
    agent = await app.support.agent(agent_id)  # the customer sees the alias of the agent who quoted
    cart = Cart(edition=edition, years=years, pack=pack, pack_chosen=True)
    checkout = getattr(app, "checkout", None)
    async with desk.customer_flow(customer) as flow:
        enterprise = customer_enterprise(await flow.phone_enterprises(), flow.session.phone,
                                         ticket.intake.enterprise_name or flow.session.enterprise_name)
        priced = price_quote(app.catalog, cart, enterprise=enterprise, phone=flow.session.phone,
                             price_fen=price_fen, now=app.clock.now(),
                             floor_percent=app.settings.quote_floor_percent, approved=approved_by is not None)
        q, listed = priced.quote, priced.listed_fen
        delivery: Literal["invoice", "link", "none"]
        delivered_to = enterprise if priced.delivered_at_once else None
        order, _ = await app.orders.create(
            user_id=customer.user_id,
            chat_id=customer.user_id,
            cart_id=f"quote:{ticket.id}:{secrets.token_hex(6)}",
            quote=q,
            channel=Channel.CONSULTATION,
            phone=flow.session.phone,
            enterprise_name=enterprise.name if enterprise else flow.session.enterprise_name or ticket.intake.enterprise_name,
            enterprise_id=delivered_to.id if delivered_to else None,
            upgrade=priced.plan.upgrade_basis(),
        )
        minutes = app.catalog.order_ttl_minutes
        total = format_fen(order.total_fen)
        if q.chat_payable:
            offer = support_screens.quote_offer(flow.tr, order, minutes=minutes, url=None, agent=agent)
            await desk.bot.send_message(customer.user_id, offer.text, reply_markup=offer.markup)
            await send_invoice(desk.bot, order, flow)
            flow.session.order_id = order.id
            delivery, told = "invoice", staff("support.staff.quote_sent_invoice", order_id=order.id, total=total)
        elif checkout is not None:
            url = await checkout.link_for_order(order, lang=flow.tr.lang)
            offer = support_screens.quote_offer(flow.tr, order, minutes=minutes, url=url, agent=agent)
            await desk.bot.send_message(customer.user_id, offer.text, reply_markup=offer.markup)
            flow.session.order_id = order.id
            delivery, told = "link", staff("support.staff.quote_sent_link", order_id=order.id, total=total)
        else:
            delivery, told = "none", staff("support.staff.quote_no_link", order_id=order.id, total=total)
    await app.support.record_quote(QuoteRecord(
        order_id=order.id, ticket_id=ticket.id, user_id=customer.user_id, agent_id=agent_id, approved_by=approved_by,
        list_total_fen=listed, total_fen=order.total_fen, delivery=delivery, created_at=app.support.now()))
    if enterprise is not None:
        told += "\n" + staff(f"support.staff.quote_for_{priced.plan.kind}", name=enterprise.name,
                             current=edition_name(staff, priced.plan.current_edition),
                             expiry=local_date(priced.plan.current_expiry, staff))
        if delivered_to is None:
            told += "\n" + staff("support.staff.quote_bind_after", name=enterprise.name)
    if price_fen is not None:
        told += "\n" + staff("support.staff.quote_negotiated", price=total, listed=format_fen(listed))
    if approved_by is not None:
        approver = await app.support.agent(approved_by)
        told += "\n" + staff("support.staff.quote_approved_by", agent=support_screens.staff_agent_label(approver))
    await desk.note(ticket, told, who="system")
    log.info("support.quote ticket=%s order=%s delivery=%s kind=%s agent=%s approved_by=%s total=%s listed=%s",
             ticket.id, order.id, delivery, priced.plan.kind, agent_id, approved_by, order.total_fen, listed)
    return told


async def tell_staff_order_paid(desk: Desk, order_id: str) -> bool:
    """When an order an agent issued has been paid, the customer's topic is told, once."""
    app = desk.app
    if app.settings.staff_chat_id is None or await app.support.quote(order_id) is None:
        return False
    order = await app.orders.get(order_id)
    if order is None or order.status not in (OrderStatus.PAID, OrderStatus.BOUND):
        return False
    record = await app.support.quote_paid(order_id)
    if record is None:
        return False  # told already
    staff = desk.staff_tr
    way = staff("support.staff.paid_in_chat" if record.delivery == "invoice" else "support.staff.paid_on_web")
    text = staff("support.staff.quote_paid", order_id=order.id, total=format_fen(order.total_fen), way=way)
    await desk.post(record.user_id, text)
    ticket = await app.support.ticket(record.ticket_id)
    if ticket is not None:
        await desk.note(ticket, text)
    log.info("support.quote_paid order=%s", order_id)
    return True


async def check_quotes(desk: Desk) -> int:
    """One pass over the quotes staff has not heard were paid: tell the paid ones, drop (and
    mention) those that can no longer be paid. Returns how many payments were told. A tick of
    the scheduler runs it (bot.runtime.jobs), on one instance at a time."""
    app = desk.app
    told = 0
    for order_id in await app.support.quotes_waiting():
        order: Order | None = await app.orders.get(order_id)
        if order is None:
            await app.support.drop_quote_watch(order_id)
        elif order.status in (OrderStatus.PAID, OrderStatus.BOUND):
            told += await tell_staff_order_paid(desk, order_id)
        elif order.status in (OrderStatus.EXPIRED, OrderStatus.CANCELLED):
            await app.support.drop_quote_watch(order_id)
            record = await app.support.quote(order_id)
            if record is not None:
                status = desk.staff_tr(f"status.{order.status.value}")
                await desk.post(record.user_id, desk.staff_tr("support.staff.quote_lapsed", order_id=order_id,
                                                              status=status))
    return told


class TellStaffOfPayments(BaseMiddleware):
    """After an in-chat payment is handled (bot/flows/payment), the topic hears of it at once
    when the order was an agent's quote. Registered on dp.message by the composition root."""

    async def __call__(self, handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
                       event: TelegramObject, data: dict[str, Any]) -> Any:
        result = await handler(event, data)
        if isinstance(event, Message) and event.successful_payment is not None:
            try:
                await tell_staff_order_paid(data["desk"], event.successful_payment.invoice_payload)
            except Exception:  # the watcher tells staff later; the buyer's payment stands
                log.exception("support.tell_paid_failed")
        return result
