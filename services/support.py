"""Customer service (F11, R16, R17): tickets, the queue, transcripts, bans, the flood limit.

A customer has at most one live ticket (pending or open) at a time:

    pending ──claim──> open ──close / 结束咨询──> resolved
       └──────────────── close / 结束咨询 ─────────┘
    resolved ──a customer message within the reopen window──> open (same agent) or pending

Every transition is one optimistic Redis transaction over the customer's record and their
current ticket (services.transactions.transact), so two agents claiming at once, or a customer
ending the consultation while an agent closes it, leave one consistent result.

The Telegram side (bot/flows/support) keeps its topic, message links and transcript here too;
this module knows nothing of Telegram beyond plain ids.
"""
from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from enum import Enum
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, Field
from redis.asyncio import Redis

from services import keys
from services.clock import Clock
from services.redis_text import text, text_or_none
from services.support_config import SupportConfig, WorkingHours
from services.transactions import Decision, TransactionConflict, Writes, transact

LINK_TTL_SECONDS = 30 * 86400  # relayed messages stay linked (replies, edits) this long
TOPIC_LOCK_SECONDS = 30
TRANSCRIPT_TEXT_MAX = 1000  # characters of a message kept in the transcript


class TicketStatus(str, Enum):
    PENDING = "pending"
    OPEN = "open"
    RESOLVED = "resolved"


class TicketKind(str, Enum):
    CONTACT = "contact"  # 联系客服 (R17)
    CONSULT = "consult"  # 购买咨询 (R2, F11)
    INVOICE = "invoice"  # 开具发票 (R16)


class IntakeCart(BaseModel):
    edition: str | None = None
    years: int | None = None
    pack: str | None = None
    pack_chosen: bool = False
    total_fen: int | None = None  # when the cart is complete enough to price


class IntakeOrder(BaseModel):
    id: str
    edition: str
    years: int
    pack: str | None = None
    total_fen: int
    status: str
    channel: str
    paid_at: datetime | None = None
    enterprise_name: str | None = None  # the bound enterprise, or the name typed at purchase


class IntakeEnterprise(BaseModel):
    name: str
    verified: bool
    edition: str | None = None
    expires_at: datetime | None = None
    role: str | None = None


class Intake(BaseModel):
    """What the agent needs to know, captured when the customer asked (codes, never names)."""

    kind: TicketKind
    name: str
    username: str | None = None
    lang: str = "zh"
    phone_masked: str | None = None  # the verified phone, masked; never in clear
    enterprise_name: str | None = None  # as typed in the purchase (R11)
    enterprises: list[IntakeEnterprise] = Field(default_factory=list)
    cart: IntakeCart | None = None
    order: IntakeOrder | None = None
    where: str | None = None  # the conversation step the customer was at ("Buy:web_only")


class TicketEvent(BaseModel):
    at: datetime
    kind: str
    detail: dict[str, Any] = Field(default_factory=dict)


class Ticket(BaseModel):
    id: str
    user_id: int
    kind: TicketKind
    status: TicketStatus
    intake: Intake
    order_ids: list[str] = Field(default_factory=list)  # orders it is about (invoices, quotes)
    created_at: datetime
    waiting_since: datetime  # created or reopened: the queue's order
    agent_id: int | None = None
    claimed_at: datetime | None = None
    resolved_at: datetime | None = None
    resolved_by: str | None = None  # "agent", "customer", "ban"
    card_message_id: int | None = None  # the pinned intake card in the customer's topic
    invoices_issued: dict[str, datetime] = Field(default_factory=dict)  # order id -> when
    messages: int = 0  # customer and agent messages relayed
    events: list[TicketEvent] = Field(default_factory=list)

    @property
    def live(self) -> bool:
        return self.status is not TicketStatus.RESOLVED


class SupportCustomer(BaseModel):
    user_id: int
    name: str = ""
    username: str | None = None
    lang: str = "zh"
    topic_chat_id: int | None = None
    topic_id: int | None = None  # their forum topic in the staff group
    current_ticket: str | None = None  # the latest ticket, live or resolved
    banner_message_id: int | None = None  # the pinned "conversation open" message in their chat
    banned: bool = False
    banned_at: datetime | None = None
    banned_by: int | None = None
    ban_reason: str | None = None


class Agent(BaseModel):
    id: int
    name: str
    username: str | None = None
    alias: str | None = None  # shown to customers instead of the account ("客服小李")


class TranscriptEntry(BaseModel):
    at: datetime
    who: Literal["customer", "agent", "note", "system"]
    kind: str = "text"  # text, photo, document, voice, video, sticker, ...
    text: str = ""
    agent_id: int | None = None


class QuoteRecord(BaseModel):
    """An order an agent issued in a consultation (F11): what it was, and whether staff heard
    of its payment."""

    order_id: str
    ticket_id: str
    user_id: int
    agent_id: int | None = None
    approved_by: int | None = None  # the second agent who let a price below the floor through
    list_total_fen: int
    total_fen: int
    delivery: Literal["invoice", "link", "none"] = "none"
    created_at: datetime
    paid_told_at: datetime | None = None


class OpenOutcome(BaseModel):
    status: Literal["created", "existing", "banned"]
    ticket: Ticket | None = None
    customer: SupportCustomer


class Change(BaseModel):
    """The result of a transition: `status` says what happened, `ticket` is the ticket now."""

    status: str
    ticket: Ticket | None = None
    customer: SupportCustomer | None = None


class _Retry(Enum):
    RETRY = "retry"  # a new ticket appeared between the two reads: read the customer again


R = TypeVar("R")
# Decides a transition from the customer's record and their current ticket (either may be missing).
TicketDecide = Callable[[SupportCustomer | None, Ticket | None], Decision[R]]


def _while_current(current: str | None, decide: TicketDecide[R]) -> Callable[[list[str | None]], Decision[R | _Retry]]:
    """`decide` on the customer's record and ticket as the transaction read them, as long as the
    ticket is still the customer's current one (`current`, read just before)."""

    def decide_values(values: list[str | None]) -> Decision[R | _Retry]:
        raw_customer, raw_ticket = values
        customer = SupportCustomer.model_validate_json(raw_customer) if raw_customer else None
        if (customer.current_ticket if customer else None) != current:
            return Decision(_Retry.RETRY)
        ticket = Ticket.model_validate_json(raw_ticket) if raw_ticket and current else None
        return decide(customer, ticket)

    return decide_values


def new_ticket_id() -> str:
    return "t" + secrets.token_hex(4)


class SupportService:
    def __init__(self, redis: Redis, clock: Clock, config: SupportConfig) -> None:
        self._redis = redis
        self._clock = clock
        self.config = config

    @property
    def hours(self) -> WorkingHours:
        return self.config.hours_of_work

    def now(self) -> datetime:
        return self._clock.now()

    # --- reading ---------------------------------------------------------------------------

    async def customer(self, user_id: int) -> SupportCustomer | None:
        raw = await self._redis.get(keys.support_customer(user_id))
        return SupportCustomer.model_validate_json(raw) if raw else None

    async def ticket(self, ticket_id: str) -> Ticket | None:
        raw = await self._redis.get(keys.support_ticket(ticket_id))
        return Ticket.model_validate_json(raw) if raw else None

    async def current(self, user_id: int) -> tuple[SupportCustomer | None, Ticket | None]:
        customer = await self.customer(user_id)
        ticket = await self.ticket(customer.current_ticket) if customer and customer.current_ticket else None
        return customer, ticket

    async def live_ticket(self, user_id: int) -> Ticket | None:
        _, ticket = await self.current(user_id)
        return ticket if ticket and ticket.live else None

    async def queue(self) -> list[Ticket]:
        """Tickets waiting for an agent, oldest first."""
        ids = await self._redis.zrange(keys.support_queue(), 0, -1)
        tickets = [await self.ticket(text(i)) for i in ids]
        return [t for t in tickets if t is not None and t.status is TicketStatus.PENDING]

    async def queue_position(self, ticket_id: str) -> int | None:
        """1 for the first in line; None when not waiting."""
        rank = await self._redis.zrank(keys.support_queue(), ticket_id)
        return rank + 1 if isinstance(rank, int) else None

    async def history(self, user_id: int, limit: int = 20) -> list[Ticket]:
        """The customer's tickets, newest first."""
        ids = await self._redis.zrevrange(keys.support_user_tickets(user_id), 0, limit - 1)
        tickets = [await self.ticket(text(i)) for i in ids]
        return [t for t in tickets if t is not None]

    # --- transitions -----------------------------------------------------------------------

    async def _transact(self, user_id: int, decide: TicketDecide[R]) -> R:
        """One transaction over the customer's record and their current ticket."""
        customer_key = keys.support_customer(user_id)
        for _ in range(20):
            raw = await self._redis.get(customer_key)
            current = SupportCustomer.model_validate_json(raw).current_ticket if raw else None
            ticket_key = keys.support_ticket(current or "-")
            result = await transact(self._redis, [customer_key, ticket_key], _while_current(current, decide))
            if not isinstance(result, _Retry):
                return result
        raise TransactionConflict(f"support customer {user_id} kept changing")

    def _save(self, pipe: Writes, customer: SupportCustomer | None = None, ticket: Ticket | None = None) -> None:
        if customer is not None:
            pipe.set(keys.support_customer(customer.user_id), customer.model_dump_json())
        if ticket is not None:
            pipe.set(keys.support_ticket(ticket.id), ticket.model_dump_json())
            if ticket.status is TicketStatus.PENDING:
                pipe.zadd(keys.support_queue(), {ticket.id: ticket.waiting_since.timestamp()})
            else:
                pipe.zrem(keys.support_queue(), ticket.id)

    async def open_ticket(
        self, user_id: int, intake: Intake, *, order_id: str | None = None
    ) -> OpenOutcome:
        """A customer asks for customer service: their live ticket, or a new pending one."""
        now = self.now()

        def decide(customer: SupportCustomer | None, ticket: Ticket | None) -> Decision[OpenOutcome]:
            customer = customer or SupportCustomer(user_id=user_id)
            customer.name, customer.username, customer.lang = intake.name, intake.username, intake.lang
            if customer.banned:
                return Decision(OpenOutcome(status="banned", customer=customer))
            if ticket is not None and ticket.live:
                # Asked again (another entry, another order): the same ticket, with the new context.
                ticket.events.append(TicketEvent(at=now, kind="asked_again",
                                                 detail={"kind": intake.kind.value, "order_id": order_id}))
                if order_id and order_id not in ticket.order_ids:
                    ticket.order_ids.append(order_id)
                if intake.order is not None or intake.cart is not None:
                    ticket.intake = intake
                outcome = OpenOutcome(status="existing", ticket=ticket, customer=customer)
                return Decision(outcome, lambda pipe: self._save(pipe, customer, ticket))
            new = Ticket(
                id=new_ticket_id(), user_id=user_id, kind=intake.kind, status=TicketStatus.PENDING,
                intake=intake, order_ids=[order_id] if order_id else [], created_at=now, waiting_since=now,
                events=[TicketEvent(at=now, kind="created", detail={"kind": intake.kind.value})],
            )
            customer.current_ticket = new.id

            def writes(pipe: Writes) -> None:
                self._save(pipe, customer, new)
                history = keys.support_user_tickets(user_id)
                pipe.zadd(history, {new.id: now.timestamp()})
                pipe.zremrangebyrank(history, 0, -self.config.history_max - 1)

            return Decision(OpenOutcome(status="created", ticket=new, customer=customer), writes)

        return await self._transact(user_id, decide)

    async def reopen_recent(self, user_id: int) -> Change:
        """A customer message after their ticket was resolved: within the reopen window the
        ticket opens again (with its agent, or back in the queue). Status: reopened, live,
        too_late, none, banned."""
        now = self.now()

        def decide(customer: SupportCustomer | None, ticket: Ticket | None) -> Decision[Change]:
            if customer is None or ticket is None:
                return Decision(Change(status="none", customer=customer))
            if customer.banned:
                return Decision(Change(status="banned", customer=customer, ticket=ticket))
            if ticket.live:
                return Decision(Change(status="live", customer=customer, ticket=ticket))
            if not self.can_reopen(ticket):
                return Decision(Change(status="too_late", customer=customer, ticket=ticket))
            ticket.status = TicketStatus.OPEN if ticket.agent_id else TicketStatus.PENDING
            ticket.resolved_at, ticket.resolved_by = None, None
            if ticket.status is TicketStatus.PENDING:
                ticket.waiting_since = now
            ticket.events.append(TicketEvent(at=now, kind="reopened"))
            change = Change(status="reopened", customer=customer, ticket=ticket)
            return Decision(change, lambda pipe: self._save(pipe, customer, ticket))

        return await self._transact(user_id, decide)

    def can_reopen(self, ticket: Ticket) -> bool:
        """Resolved (not by a ban) within the reopen window."""
        if ticket.live or ticket.resolved_by == "ban" or ticket.resolved_at is None:
            return False
        return self.now() - ticket.resolved_at <= timedelta(minutes=self.config.reopen_minutes)

    async def _ticket_change(
        self, ticket_id: str, change: Callable[[SupportCustomer, Ticket], str | None], *, refuse_resolved: bool = True
    ) -> Change:
        """Apply `change` to a ticket (it returns a status to refuse with, or None to save)."""
        ticket = await self.ticket(ticket_id)
        if ticket is None:
            return Change(status="unknown")

        def decide(customer: SupportCustomer | None, current: Ticket | None) -> Decision[Change]:
            if customer is None or current is None or current.id != ticket_id:
                # Not the customer's current ticket: it was resolved long ago.
                return Decision(Change(status="resolved", ticket=ticket, customer=customer))
            if refuse_resolved and not current.live:
                return Decision(Change(status="resolved", ticket=current, customer=customer))
            refusal = change(customer, current)
            if refusal is not None:
                return Decision(Change(status=refusal, ticket=current, customer=customer))
            done = Change(status="done", ticket=current, customer=customer)
            return Decision(done, lambda pipe: self._save(pipe, customer, current))

        return await self._transact(ticket.user_id, decide)

    async def claim(self, ticket_id: str, agent_id: int) -> Change:
        """pending → open by this agent. Status: claimed, already (theirs), taken (someone
        else's), resolved, unknown."""
        now = self.now()

        def change(customer: SupportCustomer, ticket: Ticket) -> str | None:
            if ticket.status is TicketStatus.OPEN:
                return "already" if ticket.agent_id == agent_id else "taken"
            ticket.status, ticket.agent_id, ticket.claimed_at = TicketStatus.OPEN, agent_id, now
            ticket.events.append(TicketEvent(at=now, kind="claimed", detail={"agent_id": agent_id}))
            return None

        result = await self._ticket_change(ticket_id, change)
        return result.model_copy(update={"status": "claimed"}) if result.status == "done" else result

    async def transfer(self, ticket_id: str, to_agent: int, by_agent: int) -> Change:
        """Hand a live ticket to another agent (it is open, theirs, from now). Status:
        transferred, same, resolved, unknown."""
        now = self.now()

        def change(customer: SupportCustomer, ticket: Ticket) -> str | None:
            if ticket.agent_id == to_agent and ticket.status is TicketStatus.OPEN:
                return "same"
            ticket.events.append(TicketEvent(at=now, kind="transferred",
                                             detail={"from": ticket.agent_id, "to": to_agent, "by": by_agent}))
            ticket.status, ticket.agent_id, ticket.claimed_at = TicketStatus.OPEN, to_agent, now
            return None

        result = await self._ticket_change(ticket_id, change)
        return result.model_copy(update={"status": "transferred"}) if result.status == "done" else result

    async def resolve(self, ticket_id: str, *, by: str, agent_id: int | None = None) -> Change:
        """pending/open → resolved. Status: resolved_now, resolved (it already was), unknown."""
        now = self.now()

        def change(customer: SupportCustomer, ticket: Ticket) -> str | None:
            ticket.status, ticket.resolved_at, ticket.resolved_by = TicketStatus.RESOLVED, now, by
            ticket.events.append(TicketEvent(at=now, kind="resolved", detail={"by": by, "agent_id": agent_id}))
            return None

        result = await self._ticket_change(ticket_id, change)
        return result.model_copy(update={"status": "resolved_now"}) if result.status == "done" else result

    async def mark_invoice_issued(self, ticket_id: str, order_id: str, agent_id: int) -> Change:
        """R16: the agent has issued the invoice of one of the ticket's orders. Status: issued,
        already, not_this_ticket, unknown, resolved (allowed: an invoice may come after)."""
        now = self.now()

        def change(customer: SupportCustomer, ticket: Ticket) -> str | None:
            if order_id not in ticket.order_ids:
                return "not_this_ticket"
            if order_id in ticket.invoices_issued:
                return "already"
            ticket.invoices_issued[order_id] = now
            ticket.events.append(TicketEvent(at=now, kind="invoice_issued",
                                             detail={"order_id": order_id, "agent_id": agent_id}))
            return None

        result = await self._ticket_change(ticket_id, change, refuse_resolved=False)
        if result.status == "done":
            await self._redis.set(keys.support_invoice(order_id), now.isoformat())
            return result.model_copy(update={"status": "issued"})
        return result

    async def invoice_issued_at(self, order_id: str) -> datetime | None:
        raw = await self._redis.get(keys.support_invoice(order_id))
        return datetime.fromisoformat(text(raw)) if raw else None

    async def set_card(self, ticket_id: str, message_id: int) -> None:
        await self._ticket_change(ticket_id, lambda c, t: setattr(t, "card_message_id", message_id),
                                  refuse_resolved=False)

    async def count_message(self, ticket_id: str) -> None:
        def change(customer: SupportCustomer, ticket: Ticket) -> None:
            ticket.messages += 1

        await self._ticket_change(ticket_id, change, refuse_resolved=False)

    # --- bans ------------------------------------------------------------------------------

    async def ban(self, user_id: int, *, agent_id: int, reason: str | None = None) -> Change:
        """Stop relaying a customer; their live ticket is resolved. Status: banned, already."""
        now = self.now()

        def decide(customer: SupportCustomer | None, ticket: Ticket | None) -> Decision[Change]:
            customer = customer or SupportCustomer(user_id=user_id)
            if customer.banned:
                return Decision(Change(status="already", customer=customer, ticket=ticket))
            customer.banned, customer.banned_at, customer.banned_by = True, now, agent_id
            customer.ban_reason = reason
            if ticket is not None and ticket.live:
                ticket.status, ticket.resolved_at, ticket.resolved_by = TicketStatus.RESOLVED, now, "ban"
                ticket.events.append(TicketEvent(at=now, kind="resolved", detail={"by": "ban", "agent_id": agent_id}))
                change = Change(status="banned", customer=customer, ticket=ticket)
                return Decision(change, lambda pipe: self._save(pipe, customer, ticket))
            change = Change(status="banned", customer=customer, ticket=None)
            return Decision(change, lambda pipe: self._save(pipe, customer))

        return await self._transact(user_id, decide)

    async def unban(self, user_id: int) -> Change:
        """Status: unbanned, not_banned."""
        def decide(customer: SupportCustomer | None, ticket: Ticket | None) -> Decision[Change]:
            if customer is None or not customer.banned:
                return Decision(Change(status="not_banned", customer=customer))
            customer.banned, customer.banned_at, customer.banned_by, customer.ban_reason = False, None, None, None
            return Decision(Change(status="unbanned", customer=customer), lambda pipe: self._save(pipe, customer))

        return await self._transact(user_id, decide)

    # --- the customer's topic in the staff group -------------------------------------------

    async def topic_customer(self, chat_id: int, thread_id: int) -> int | None:
        raw = await self._redis.get(keys.support_topic(chat_id, thread_id))
        return int(raw) if raw else None

    async def ensure_topic(
        self, user_id: int, chat_id: int, create: Callable[[], Awaitable[int]]
    ) -> tuple[int, bool]:
        """The customer's topic in the staff group, created once: concurrent callers (two first
        messages at once, two bot replicas) wait on one lock and all get the same topic.
        Returns (thread id, whether this call created it)."""
        customer = await self.customer(user_id)
        if customer and customer.topic_id and customer.topic_chat_id == chat_id:
            return customer.topic_id, False
        lock = self._redis.lock(keys.support_topic_lock(user_id), timeout=TOPIC_LOCK_SECONDS,
                                blocking_timeout=TOPIC_LOCK_SECONDS)
        async with lock:
            customer = await self.customer(user_id)
            if customer and customer.topic_id and customer.topic_chat_id == chat_id:
                return customer.topic_id, False
            thread_id = await create()

            def decide(customer: SupportCustomer | None, ticket: Ticket | None) -> Decision[None]:
                customer = customer or SupportCustomer(user_id=user_id)
                customer.topic_chat_id, customer.topic_id = chat_id, thread_id

                def writes(pipe: Writes) -> None:
                    self._save(pipe, customer)
                    pipe.set(keys.support_topic(chat_id, thread_id), user_id)

                return Decision(None, writes)

            await self._transact(user_id, decide)
            return thread_id, True

    async def forget_topic(self, user_id: int, chat_id: int, thread_id: int) -> None:
        """The topic is gone (deleted by staff): the next message creates a new one. Only this
        topic is forgotten, so a newer one made meanwhile by a concurrent message stays."""
        def decide(customer: SupportCustomer | None, ticket: Ticket | None) -> Decision[None]:
            if customer is None or customer.topic_id != thread_id or customer.topic_chat_id != chat_id:
                return Decision(None, lambda pipe: pipe.delete(keys.support_topic(chat_id, thread_id)))
            customer.topic_id = None

            def writes(pipe: Writes) -> None:
                self._save(pipe, customer)
                pipe.delete(keys.support_topic(chat_id, thread_id))

            return Decision(None, writes)

        await self._transact(user_id, decide)

    async def set_banner(self, user_id: int, message_id: int | None) -> int | None:
        """Remember the pinned banner in the customer's chat; returns the one it replaces."""
        def decide(customer: SupportCustomer | None, ticket: Ticket | None) -> Decision[int | None]:
            customer = customer or SupportCustomer(user_id=user_id)
            previous = customer.banner_message_id
            customer.banner_message_id = message_id
            return Decision(previous, lambda pipe: self._save(pipe, customer))

        return await self._transact(user_id, decide)

    # --- messages: links for replies and edits, the transcript, the flood limit -------------

    async def link(self, a: tuple[int, int], b: tuple[int, int]) -> None:
        """Two copies of one message (customer chat ↔ staff topic), both ways."""
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.set(keys.support_link(*a), f"{b[0]}:{b[1]}", ex=LINK_TTL_SECONDS)
            pipe.set(keys.support_link(*b), f"{a[0]}:{a[1]}", ex=LINK_TTL_SECONDS)
            await pipe.execute()

    async def linked(self, chat_id: int, message_id: int) -> tuple[int, int] | None:
        raw = text_or_none(await self._redis.get(keys.support_link(chat_id, message_id)))
        if not raw:
            return None
        chat, message = raw.split(":")
        return int(chat), int(message)

    async def record(self, ticket_id: str, entry: TranscriptEntry) -> None:
        """Append to the ticket's transcript, keeping the latest `transcript_max` entries."""
        entry = entry.model_copy(update={"text": entry.text[:TRANSCRIPT_TEXT_MAX]})
        key = keys.support_transcript(ticket_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.rpush(key, entry.model_dump_json())
            pipe.ltrim(key, -self.config.transcript_max, -1)
            await pipe.execute()

    async def transcript(self, ticket_id: str, limit: int | None = None) -> list[TranscriptEntry]:
        start = -limit if limit else 0
        if limit == 0:
            return []
        raws = await self._redis.lrange(keys.support_transcript(ticket_id), start, -1)
        return [TranscriptEntry.model_validate_json(r) for r in raws]

    async def flood(self, user_id: int) -> Literal["ok", "first_over", "over"]:
        """Count a customer message against the flood limit (a fixed window per customer)."""
        window = self.config.flood
        bucket = int(self.now().timestamp()) // window.seconds
        key = keys.support_flood(user_id, bucket)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.incr(key)
            pipe.expire(key, window.seconds * 2)
            count, _ = await pipe.execute()
        if count <= window.messages:
            return "ok"
        return "first_over" if count == window.messages + 1 else "over"

    # --- agents ----------------------------------------------------------------------------

    async def agent(self, agent_id: int) -> Agent | None:
        raw = await self._redis.get(keys.support_agent(agent_id))
        return Agent.model_validate_json(raw) if raw else None

    async def register_agent(self, agent_id: int, name: str, username: str | None) -> Agent:
        """Anyone who speaks in the staff group is an agent; their name is kept fresh."""
        agent = await self.agent(agent_id) or Agent(id=agent_id, name=name)
        if (agent.name, agent.username) != (name, username):
            agent.name, agent.username = name, username
            await self._save_agent(agent)
        elif not await self._redis.sismember(keys.support_agents(), str(agent_id)):
            await self._save_agent(agent)
        return agent

    async def set_alias(self, agent_id: int, alias: str | None, *, name: str = "") -> Agent:
        agent = await self.agent(agent_id) or Agent(id=agent_id, name=name or str(agent_id))
        agent.alias = alias
        await self._save_agent(agent)
        return agent

    async def _save_agent(self, agent: Agent) -> None:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.set(keys.support_agent(agent.id), agent.model_dump_json())
            pipe.sadd(keys.support_agents(), agent.id)
            await pipe.execute()

    async def agents(self) -> list[Agent]:
        ids = sorted(int(i) for i in await self._redis.smembers(keys.support_agents()))
        found = [await self.agent(i) for i in ids]
        return [a for a in found if a is not None]

    async def find_agent(self, text: str) -> Agent | None:
        """An agent by alias, @username, name or id, as an agent types it in /transfer."""
        wanted = text.strip().lstrip("@").casefold()
        for agent in await self.agents():
            names = {str(agent.id), agent.name.casefold(), (agent.username or "").casefold(),
                     (agent.alias or "").casefold()}
            if wanted and wanted in names:
                return agent
        return None

    # --- quotes: orders issued by agents ----------------------------------------------------

    async def record_quote(self, record: QuoteRecord) -> None:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.set(keys.support_quote(record.order_id), record.model_dump_json())
            pipe.zadd(keys.support_quotes(), {record.order_id: record.created_at.timestamp()})
            await pipe.execute()

    async def quote(self, order_id: str) -> QuoteRecord | None:
        raw = await self._redis.get(keys.support_quote(order_id))
        return QuoteRecord.model_validate_json(raw) if raw else None

    async def quotes_waiting(self) -> list[str]:
        """Quoted orders whose payment staff has not heard of yet."""
        return [text(i) for i in await self._redis.zrange(keys.support_quotes(), 0, -1)]

    async def quote_paid(self, order_id: str) -> QuoteRecord | None:
        """Mark that staff was told of this quote's payment; the record the first time only."""
        now = self.now()
        key = keys.support_quote(order_id)

        def decide(values: list[str | None]) -> Decision[QuoteRecord | None]:
            (raw,) = values
            if raw is None:
                return Decision(None)
            record = QuoteRecord.model_validate_json(raw)
            if record.paid_told_at is not None:
                return Decision(None)
            record.paid_told_at = now
            return Decision(record, lambda pipe: (pipe.set(key, record.model_dump_json()),
                                                  pipe.zrem(keys.support_quotes(), order_id)))

        return await transact(self._redis, [key], decide)

    async def drop_quote_watch(self, order_id: str) -> None:
        """Stop watching a quote that can no longer be paid (expired, cancelled)."""
        await self._redis.zrem(keys.support_quotes(), order_id)


def negotiated_lines(amounts: list[int], total_fen: int) -> list[int]:
    """Spread a negotiated total over a quote's lines in proportion to their list amounts, so
    the lines still add up to the total (rounding goes to the first line, the edition)."""
    if total_fen <= 0 or not amounts or sum(amounts) <= 0:
        raise ValueError("a negotiated total and list amounts must be positive")
    listed = sum(amounts)
    spread = [amount * total_fen // listed for amount in amounts]
    spread[0] += total_fen - sum(spread)
    if any(part <= 0 for part in spread):
        raise ValueError("the negotiated total is too small to spread over the lines")
    return spread

