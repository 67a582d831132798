"""An agent's quote (F11): what the customer is offered, priced by the same rules as a purchase
made in chat (R2, R5, R18), with an optional negotiated price.

- The enterprise the quote is for is the customer's, when it is known: a verified enterprise
  the customer's verified phone has joined, the one named at intake first. The quote is then
  priced on what it has (services.purchase_policy): a renewal, an upgrade, or refused when it
  would be a downgrade. A renewal or an upgrade is the enterprise's own purchase, so the
  customer must be its super or billing admin; it is delivered at payment (R19).
- A negotiated price (a discount, never a surcharge) replaces the total and is spread over the
  lines in proportion to their list amounts, so lines, invoice and total agree. Below the
  floor (QUOTE_FLOOR_PERCENT of the list price) it needs a second agent's approval: the quote
  is then kept as a proposal (QuoteProposals) until another agent approves it, and refused
  until then (QuoteNeedsApproval). docs/security.md, "Agent quotes".
- Whether the chat may take the payment is R2's rule (Catalog.payable_in_chat), from the
  order's own edition and amount.
"""
from __future__ import annotations

import math
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from redis.asyncio import Redis

from services import keys
from services.catalog import Cart, Catalog, Quote, format_fen
from services.clock import Clock
from services.enterprises import Enterprise
from services.purchase_policy import PurchasePlan, plan_purchase
from services.support import negotiated_lines
from services.text_input import name_key


class QuoteProblem(ValueError):
    """A quote the agent must correct; `key` is its text in support.staff.*, with `values`."""

    def __init__(self, key: str, **values: Any) -> None:
        super().__init__(key)
        self.key = key
        self.values = values


class QuoteNeedsApproval(QuoteProblem):
    """A negotiated price below the floor: only a second agent's approval lets it through."""

    def __init__(self, price_fen: int, listed_fen: int, floor_fen: int, floor_percent: int) -> None:
        super().__init__("support.staff.quote_needs_approval", price=format_fen(price_fen),
                         listed=format_fen(listed_fen), floor=format_fen(floor_fen), percent=floor_percent)
        self.price_fen, self.listed_fen, self.floor_fen = price_fen, listed_fen, floor_fen


def floor_fen(listed_fen: int, floor_percent: int) -> int:
    """The lowest price an agent may quote alone: the list price × the floor, rounded up."""
    return math.ceil(listed_fen * floor_percent / 100)


@dataclass(frozen=True)
class PricedQuote:
    quote: Quote  # what the order will be: lines, total (negotiated or not), chat payable
    listed_fen: int  # the list total before negotiation
    plan: PurchasePlan
    enterprise: Enterprise | None  # the customer's enterprise it was priced for, if known
    delivered_at_once: bool  # bought by the enterprise's admin: delivered at payment (R19)


def customer_enterprise(enterprises: list[Enterprise], phone: str | None, intake_name: str | None) -> Enterprise | None:
    """The verified enterprise a customer buys for, when it can be known: the one named at intake
    among those the verified phone joined, else the only one it may buy for, else the only one."""
    joined = [e for e in enterprises if e.verified and phone and phone in e.members]
    named = [e for e in joined if intake_name and name_key(e.name) == name_key(intake_name)]
    if len(named) == 1:
        return named[0]
    admin_of = [e for e in joined if (role := e.role_of(phone)) is not None and role.can_buy]
    if len(admin_of) == 1:
        return admin_of[0]
    return joined[0] if len(joined) == 1 else None


def price_quote(catalog: Catalog, cart: Cart, *, enterprise: Enterprise | None, phone: str | None,
                price_fen: int | None, now: datetime, floor_percent: int = 0, approved: bool = False) -> PricedQuote:
    """The quote for `cart`, priced for the customer's enterprise when known. Raises QuoteProblem
    with the reason the agent is told: a downgrade, missing billing rights, a bad price; and
    QuoteNeedsApproval for a price below `floor_percent` of the list price not `approved` by a
    second agent."""
    plan = plan_purchase(catalog, cart, enterprise, now)
    if plan.refusal is not None or plan.quote is None:
        assert enterprise is not None
        raise QuoteProblem("support.staff.quote_downgrade", name=enterprise.name, current=plan.current_edition,
                           expiry=plan.current_expiry, edition=cart.edition)
    role = enterprise.role_of(phone) if enterprise is not None else None
    may_buy = role is not None and role.can_buy
    if enterprise is not None and plan.kind in ("renewal", "upgrade") and not may_buy:
        raise QuoteProblem("support.staff.quote_no_rights", name=enterprise.name, current=plan.current_edition)
    listed = plan.quote
    priced = listed
    if price_fen is not None:
        problem = QuoteProblem("support.staff.quote_bad_price", price=format_fen(price_fen),
                               listed=format_fen(listed.total_fen))
        if price_fen <= 0 or price_fen > listed.total_fen:
            raise problem
        lowest = floor_fen(listed.total_fen, floor_percent)
        if price_fen < lowest and not approved:
            raise QuoteNeedsApproval(price_fen, listed.total_fen, lowest, floor_percent)
        try:
            amounts = negotiated_lines([line.amount_fen for line in listed.lines], price_fen)
        except ValueError:
            raise problem from None
        lines = [line.model_copy(update={"amount_fen": amount})
                 for line, amount in zip(listed.lines, amounts, strict=True)]
        priced = listed.model_copy(update={"lines": lines, "total_fen": price_fen})
    in_chat = catalog.payable_in_chat(kind=priced.kind, edition=priced.edition, total_fen=priced.total_fen)
    return PricedQuote(quote=priced.model_copy(update={"chat_payable": in_chat}), listed_fen=listed.total_fen,
                       plan=plan, enterprise=enterprise, delivered_at_once=enterprise is not None and may_buy)


# --- quotes below the floor wait for a second agent --------------------------------------------

PROPOSAL_TTL_SECONDS = 3600  # an approval not given within the hour lapses


class QuoteProposal(BaseModel):
    """A quote an agent asked for below the floor, waiting for another agent's approval."""

    id: str
    ticket_id: str
    user_id: int
    agent_id: int  # who proposed it: may not approve it
    edition: str
    years: int
    pack: str | None
    price_fen: int
    listed_fen: int
    created_at: datetime


class QuoteProposals:
    """Proposals in Redis: made, read, and taken once (GETDEL), so two approvals never issue
    two orders."""

    def __init__(self, redis: Redis, clock: Clock) -> None:
        self._redis = redis
        self._clock = clock

    async def propose(self, *, ticket_id: str, user_id: int, agent_id: int, edition: str, years: int,
                      pack: str | None, price_fen: int, listed_fen: int) -> QuoteProposal:
        proposal = QuoteProposal(id=secrets.token_hex(6), ticket_id=ticket_id, user_id=user_id, agent_id=agent_id,
                                 edition=edition, years=years, pack=pack, price_fen=price_fen, listed_fen=listed_fen,
                                 created_at=self._clock.now())
        await self._redis.set(keys.support_quote_proposal(proposal.id), proposal.model_dump_json(),
                              ex=PROPOSAL_TTL_SECONDS)
        return proposal

    async def get(self, proposal_id: str) -> QuoteProposal | None:
        raw = await self._redis.get(keys.support_quote_proposal(proposal_id))
        return QuoteProposal.model_validate_json(raw) if raw else None

    async def take(self, proposal_id: str) -> QuoteProposal | None:
        """The proposal, removed: only one caller gets it."""
        raw = await self._redis.getdel(keys.support_quote_proposal(proposal_id))
        return QuoteProposal.model_validate_json(raw) if raw else None
