"""Orders (docs/rules.md, Orders): pending_payment → paid → bound, with expired and cancelled exits.

An order an enterprise places for itself (F7–F9: renewal, upgrade, value-added service, or a
new edition bought from the enterprise's billing screen) knows its enterprise from the start
(`for_enterprise`): the payment delivers it at once, in the same transaction, and it goes
straight from pending_payment to bound (delivered). No binding step.

Every transition is one optimistic Redis transaction that checks the current state, so a
repeated call is harmless: a payment notice never pays twice, a paid order is delivered
once, and a payment that cannot be applied is kept for a refund, never lost.

Within `read_once()` (the bot opens it for each update) an order is read from Redis once:
the next `get` of it returns what was read, or what a transition of this service wrote since.
"""
from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel
from redis.asyncio import Redis

from services import keys
from services.catalog import Catalog, Quote
from services.clock import Clock
from services.delivery import Conversion, DeliveryRefused, deliver, delivery_problem
from services.enterprises import Enterprise
from services.order_records import STARS, Channel, DeliveryNote, Order, OrderEvent, OrderKind, OrderStatus, UpgradeBasis
from services.redis_text import text
from services.transactions import Decision, TransactionConflict, Writes, transact

# The order records are defined in services.order_records; importers may take them from here.
__all__ = ["STARS", "BindOutcome", "Channel", "DeliveryNote", "Order", "OrderEvent", "OrderKind", "OrderService",
           "OrderStatus", "PayRefusal", "PaymentOutcome", "UpgradeBasis"]

PayRefusal = Literal["unknown", "not_yours", "expired", "cancelled", "already_paid", "mismatch", "changed",
                     "not_in_chat"]


class PaymentOutcome(BaseModel):
    status: Literal["paid", "duplicate", "refund_pending", "unknown_order"]
    order: Order | None = None
    reason: str | None = None


class BindOutcome(BaseModel):
    status: Literal["bound", "already_bound", "refused"]
    order: Order | None = None
    enterprise: Enterprise | None = None
    reason: str | None = None  # not_yours, not_paid, not_member, not_verified, downgrade, term_over, ...
    conversion: Conversion | None = None  # a lower edition's time converted (services.delivery)


CREATE_ATTEMPTS = 20
CART_CLAIM_SECONDS = 86400 * 30  # a cart id maps to its order this long (double-tap guard)

# KEYS: the cart's claim, the new order, the buyer's orders, the pending orders. ARGV: order id,
# order JSON, claim ttl, created and expiry scores, the claim this order may replace ('' = none).
# The claim and the order are written together, so a concurrent create either finds both or
# writes them itself; returns the id of the order that holds the claim already, if another does.
_CREATE = """
local claim = redis.call('GET', KEYS[1])
if claim and claim ~= ARGV[6] then return claim end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[3])
redis.call('SET', KEYS[2], ARGV[2])
-- A user's orders stay in creation order even when made in the same instant (a frozen clock
-- in tests, two taps in one millisecond): a newer order always scores above the newest one.
local score = tonumber(ARGV[4])
local newest = redis.call('ZREVRANGE', KEYS[3], 0, 0, 'WITHSCORES')
if newest[2] and tonumber(newest[2]) >= score then score = tonumber(newest[2]) + 0.001 end
redis.call('ZADD', KEYS[3], score, ARGV[1])
redis.call('ZADD', KEYS[4], ARGV[5], ARGV[1])
return false
"""

# The orders read in the current update (read_once), by id.
_read_in_update: ContextVar[dict[str, Order] | None] = ContextVar("orders_read_in_update", default=None)


@contextmanager
def read_once() -> Iterator[None]:
    """Within the block, each order is read from Redis once (OrderService.get)."""
    token = _read_in_update.set({})
    try:
        yield
    finally:
        _read_in_update.reset(token)


def _remember(order: Order | None, order_id: str | None = None) -> None:
    """What this update now knows of an order (None: that it does not exist)."""
    read = _read_in_update.get()
    if read is None:
        return
    if order is not None:
        read[order.id] = order
    elif order_id is not None:
        read.pop(order_id, None)


def new_order_id() -> str:
    return "o" + secrets.token_hex(6)


class OrderService:
    def __init__(self, redis: Redis, clock: Clock, catalog: Catalog, *, chat_currency: str | None = None) -> None:
        self._redis = redis
        self._clock = clock
        self._catalog = catalog
        # What in-chat invoices are in: the catalog's currency, or Telegram Stars (XTR).
        self.chat_currency = chat_currency or catalog.currency
        self._create = redis.register_script(_CREATE)

    @property
    def ttl(self) -> timedelta:
        return timedelta(minutes=self._catalog.order_ttl_minutes)

    async def create(
        self,
        *,
        user_id: int,
        chat_id: int,
        cart_id: str,
        quote: Quote,
        channel: Channel = Channel.CHAT,
        phone: str | None = None,
        enterprise_name: str | None = None,
        enterprise_id: str | None = None,
        upgrade: UpgradeBasis | None = None,
    ) -> tuple[Order, bool]:
        """Create the order for a cart, once: the same cart id returns the same order.

        With `enterprise_id` the order is the enterprise's own (F7–F9): paying it delivers it."""
        now = self._clock.now()
        order = Order(
            id=new_order_id(),
            user_id=user_id,
            chat_id=chat_id,
            channel=channel,
            status=OrderStatus.PENDING,
            lines=quote.lines,
            total_fen=quote.total_fen,
            currency=self._catalog.currency,
            total_stars=self._catalog.stars_for(quote.lines),
            edition=quote.edition,
            years=quote.years,
            pack=quote.pack,
            contracts=quote.contracts,
            enterprise_name=enterprise_name,
            phone=phone,
            created_at=now,
            expires_at=now + self.ttl,
            events=[OrderEvent(at=now, kind="created", detail={"channel": channel.value})],
            kind=OrderKind(quote.kind),
            for_enterprise=enterprise_id is not None,
            enterprise_id=enterprise_id,
            upgrade=upgrade,
        )
        # One script writes the cart's claim and the order together (_CREATE). A claim held by an
        # order that is gone is taken over, unless it changed meanwhile.
        cart_key, replace = keys.cart_order(cart_id), ""
        for _ in range(CREATE_ATTEMPTS):
            holder = await self._create(
                keys=[cart_key, keys.order(order.id), keys.user_orders(user_id), keys.pending_orders()],
                args=[order.id, order.model_dump_json(), CART_CLAIM_SECONDS, repr(now.timestamp()),
                      repr(order.expires_at.timestamp()), replace],
            )
            if holder is None:
                _remember(order)
                return order, True
            existing = await self.get(text(holder))  # expires it lazily when overdue
            if existing is not None:
                return existing, False
            replace = text(holder)
        raise TransactionConflict(f"cart {cart_id} kept changing")

    async def get(self, order_id: str) -> Order | None:
        read = _read_in_update.get()
        order = read.get(order_id) if read is not None else None
        if order is None:
            raw = await self._redis.get(keys.order(order_id))
            if raw is None:
                return None
            order = Order.model_validate_json(raw)
            _remember(order)
        if order.is_overdue(self._clock.now()):
            return await self.expire(order_id)
        return order

    async def list_for_user(self, user_id: int, limit: int = 20) -> list[Order]:
        ids = await self._redis.zrevrange(keys.user_orders(user_id), 0, limit - 1)
        if not ids:
            return []
        raws = await self._redis.mget([keys.order(text(i)) for i in ids])
        now = self._clock.now()
        orders = []
        for raw in raws:
            if raw is None:
                continue
            order = Order.model_validate_json(raw)
            if order.is_overdue(now):
                order = await self.expire(order.id) or order
            orders.append(order)
        return orders

    async def check_payable(
        self, order_id: str, *, user_id: int, amount_fen: int, currency: str
    ) -> PayRefusal | None:
        """Whether an in-chat payment of the order may go ahead: None when it may, else why not."""
        order = await self.get(order_id)
        return await self._chat_payment_problem(order, user_id=user_id, amount_fen=amount_fen, currency=currency)

    async def hold_for_payment(
        self, order_id: str, *, user_id: int, amount_fen: int, currency: str, hold: timedelta
    ) -> PayRefusal | None:
        """Telegram's pre-checkout (F4): check the order as check_payable does and, when it may
        be paid, hold it for `hold` so that the payment that follows is honoured even if the
        order's own time runs out meanwhile (R20). None when approved, else why not."""
        now = self._clock.now()
        order_key = keys.order(order_id)
        order = await self.get(order_id)
        refusal = await self._chat_payment_problem(order, user_id=user_id, amount_fen=amount_fen, currency=currency)
        if refusal is not None:
            return refusal

        def decide(values: list[str | None]) -> Decision[PayRefusal | None]:
            (raw,) = values
            current = Order.model_validate_json(raw) if raw else None
            if current is None or current.status is not OrderStatus.PENDING or current.is_overdue(now):
                return Decision("expired" if current is not None and current.is_overdue(now) else "changed")
            current.held_until = max(current.held_until or now, now + hold)
            current.events.append(OrderEvent(at=now, kind="payment_held",
                                             detail={"until": current.held_until.isoformat()}))
            return Decision(None, lambda pipe: (
                pipe.set(order_key, current.model_dump_json()),
                pipe.zadd(keys.pending_orders(), {order_id: current.payable_until().timestamp()}),
            ))

        assert order is not None
        refusal = await transact(self._redis, [order_key], decide, known=[order.model_dump_json()])
        _remember(None, order_id)  # read afresh when next asked for
        return refusal

    async def _chat_payment_problem(self, order: Order | None, *, user_id: int, amount_fen: int,
                                    currency: str) -> PayRefusal | None:
        if order is None:
            return "unknown"
        if order.user_id != user_id:
            return "not_yours"
        if order.status is OrderStatus.EXPIRED:
            return "expired"
        if order.status is OrderStatus.CANCELLED:
            return "cancelled"
        if order.status is not OrderStatus.PENDING:
            return "already_paid"
        if currency != self.chat_currency or not order.charged(amount_fen, currency):
            return "mismatch"
        if not self.payable_in_chat(order):
            return "not_in_chat"
        if order.for_enterprise:
            # The enterprise must still take it as priced (an upgrade's edition and expiry, a
            # service's availability), and the buyer still have billing rights.
            enterprise = await self._enterprise(order.enterprise_id)
            if enterprise is None or _delivery_problem(order, enterprise, self._catalog, self._clock.now()):
                return "changed"
        return None

    def payable_in_chat(self, order: Order) -> bool:
        """R2 for an existing order, from its own edition and amount."""
        return self._catalog.payable_in_chat(kind=order.kind.value, edition=order.edition, total_fen=order.total_fen)

    async def _enterprise(self, enterprise_id: str | None) -> Enterprise | None:
        raw = await self._redis.get(keys.enterprise(enterprise_id)) if enterprise_id else None
        return Enterprise.model_validate_json(raw) if raw else None

    async def pending_due(self, now: datetime, limit: int = 500) -> list[str]:
        """Ids of orders whose payment window has closed (the scheduler expires them)."""
        ids = await self._redis.zrangebyscore(keys.pending_orders(), "-inf", now.timestamp(), start=0, num=limit)
        return [text(i) for i in ids]

    async def expire_due(self, limit: int = 500) -> int:
        """Expire the unpaid orders past their lifetime; returns how many moved to expired."""
        now = self._clock.now()
        moved = 0
        for order_id in await self.pending_due(now, limit):
            raw = await self._redis.get(keys.order(order_id))
            was_pending = raw is not None and Order.model_validate_json(raw).status is OrderStatus.PENDING
            order = await self.expire(order_id)
            if was_pending and order is not None and order.status is OrderStatus.EXPIRED:
                moved += 1
            if order is None or order.status is not OrderStatus.PENDING:  # a held one stays due later
                await self._redis.zrem(keys.pending_orders(), order_id)
        return moved

    async def mark_paid(
        self, order_id: str, *, charge_id: str, amount_fen: int, currency: str, provider: str,
        payer_id: int | None = None,
    ) -> PaymentOutcome:
        """Apply a payment once, keyed by its charge id; what cannot be applied is kept for a refund.
        `amount_fen` is the amount in `currency`'s smallest unit (whole stars for XTR); `payer_id`,
        the Telegram user who paid, lets a refund go back to them even for an unknown order."""
        now = self._clock.now()
        order_key, charge_key = keys.order(order_id), keys.charge(charge_id)
        payment: dict[str, Any] = {"charge_id": charge_id, "amount_fen": amount_fen, "currency": currency,
                                   "provider": provider}
        if payer_id is not None:
            payment["payer_id"] = payer_id
        # An enterprise's own order is delivered with its payment: its record joins the
        # transaction. The enterprise of an order never changes, so when the order turns out to
        # be one, the transaction starts again with the enterprise's key (ent_key).
        ent_key: str | None = None

        def decide(values: list[str | None]) -> Decision[PaymentOutcome | None]:
            nonlocal ent_key
            raw_order, seen_charge = values[0], values[1]
            raw_ent = values[2] if len(values) > 2 else None
            if seen_charge is not None:
                order = Order.model_validate_json(raw_order) if raw_order else None
                return Decision(PaymentOutcome(status="duplicate", order=order))
            if raw_order is None:
                refund = refund_record(payment, order_id, "unknown_order", now)
                return Decision(
                    PaymentOutcome(status="unknown_order", reason="unknown_order"),
                    lambda pipe: (pipe.set(charge_key, order_id),
                                  pipe.rpush(keys.refunds(), json.dumps(refund))),
                )
            order = Order.model_validate_json(raw_order)
            reason = _payment_problem(order, now, amount_fen, currency)
            if reason is None and order.for_enterprise and ent_key is None and order.enterprise_id:
                ent_key = keys.enterprise(order.enterprise_id)
                return Decision(None)  # again, with the enterprise's record
            if reason is None and order.for_enterprise:
                return self._pay_and_deliver(order, raw_ent, ent_key, charge_key, payment, now)
            if reason is None:
                order.status = OrderStatus.PAID
                order.paid_at = now
                order.charge_id = charge_id
                order.events.append(OrderEvent(at=now, kind="paid", detail=payment))
                outcome = PaymentOutcome(status="paid", order=order)

                def writes(pipe: Writes) -> None:
                    pipe.set(charge_key, order_id)
                    pipe.set(order_key, order.model_dump_json())

                return Decision(outcome, writes)
            if order.is_overdue(now):
                order.status = OrderStatus.EXPIRED
                order.events.append(OrderEvent(at=now, kind="expired"))
            order.events.append(OrderEvent(at=now, kind="refund_pending", detail={**payment, "reason": reason}))
            refund = refund_record(payment, order_id, reason, now)
            outcome = PaymentOutcome(status="refund_pending", order=order, reason=reason)

            def refund_writes(pipe: Writes) -> None:
                pipe.set(charge_key, order_id)
                pipe.set(order_key, order.model_dump_json())
                pipe.rpush(keys.refunds(), json.dumps(refund))

            return Decision(outcome, refund_writes)

        outcome = await transact(self._redis, [order_key, charge_key], decide)
        if outcome is None and ent_key is not None:
            outcome = await transact(self._redis, [order_key, charge_key, ent_key], decide)
        assert outcome is not None  # with the enterprise's key, decide always decides
        _remember(outcome.order, order_id)
        return outcome

    def _pay_and_deliver(self, order: Order, raw_ent: str | None, ent_key: str | None, charge_key: str,
                         payment: dict[str, Any], now: datetime) -> Decision[PaymentOutcome]:
        """The payment of an enterprise's own order: delivered at once (paid → bound in one step),
        or, when the enterprise no longer takes it, kept for a refund and the order cancelled."""
        order_key = keys.order(order.id)
        order.paid_at = now
        order.charge_id = payment["charge_id"]
        order.events.append(OrderEvent(at=now, kind="paid", detail=payment))
        enterprise = Enterprise.model_validate_json(raw_ent) if raw_ent else None
        problem = "unknown_enterprise" if enterprise is None else None
        if enterprise is not None:
            try:
                deliver(enterprise, order, self._catalog, now)
            except DeliveryRefused as refusal:
                problem = refusal.reason
        if problem is not None or enterprise is None or ent_key is None:
            order.status = OrderStatus.CANCELLED
            order.events.append(OrderEvent(at=now, kind="refund_pending", detail={**payment, "reason": problem}))
            refund = refund_record(payment, order.id, f"undeliverable:{problem}", now)
            return Decision(
                PaymentOutcome(status="refund_pending", order=order, reason="undeliverable"),
                lambda pipe: (pipe.set(charge_key, order.id), pipe.set(order_key, order.model_dump_json()),
                              pipe.rpush(keys.refunds(), json.dumps(refund))),
            )
        order.status = OrderStatus.BOUND
        order.bound_at = now
        order.delivery = DeliveryNote(
            enterprise_name=enterprise.name, edition=enterprise.edition, expires_at=enterprise.expires_at,
            contracts_left=enterprise.contracts_left, services=dict(enterprise.services),
            subscriptions=dict(enterprise.subscriptions),
        )
        order.events.append(OrderEvent(at=now, kind="delivered", detail={"enterprise_id": enterprise.id}))
        return Decision(
            PaymentOutcome(status="paid", order=order),
            lambda pipe: (pipe.set(charge_key, order.id), pipe.set(order_key, order.model_dump_json()),
                          pipe.set(ent_key, enterprise.model_dump_json())),
        )

    async def bind(self, order_id: str, *, user_id: int, enterprise_id: str, phone: str) -> BindOutcome:
        """Bind a paid order to a verified enterprise the buyer's phone belongs to, and deliver (R12)."""
        now = self._clock.now()
        order_key, ent_key = keys.order(order_id), keys.enterprise(enterprise_id)

        def decide(values: list[str | None]) -> Decision[BindOutcome]:
            raw_order, raw_ent = values
            if raw_order is None:
                return Decision(BindOutcome(status="refused", reason="unknown"))
            order = Order.model_validate_json(raw_order)
            if order.user_id != user_id:
                return Decision(BindOutcome(status="refused", reason="not_yours"))
            if order.status is OrderStatus.BOUND:
                status: Literal["already_bound", "refused"] = (
                    "already_bound" if order.enterprise_id == enterprise_id else "refused")
                return Decision(BindOutcome(status=status, order=order, reason="already_bound"))
            if order.status is not OrderStatus.PAID:
                return Decision(BindOutcome(status="refused", order=order, reason="not_paid"))
            if raw_ent is None:
                return Decision(BindOutcome(status="refused", order=order, reason="unknown_enterprise"))
            enterprise = Enterprise.model_validate_json(raw_ent)
            if phone not in enterprise.members:
                return Decision(BindOutcome(status="refused", order=order, reason="not_member"))
            if not enterprise.verified:
                return Decision(BindOutcome(status="refused", order=order, reason="not_verified"))
            try:
                conversion = deliver(enterprise, order, self._catalog, now)
            except DeliveryRefused as refusal:
                return Decision(BindOutcome(status="refused", order=order, reason=refusal.reason))
            order.status = OrderStatus.BOUND
            order.enterprise_id = enterprise_id
            order.bound_at = now
            detail: dict[str, Any] = {"enterprise_id": enterprise_id}
            if conversion is not None:
                detail["converted"] = {"from": conversion.from_edition, "days_left": conversion.days_left,
                                       "credited_days": conversion.credited_days}
            order.events.append(OrderEvent(at=now, kind="bound", detail=detail))

            def writes(pipe: Writes) -> None:
                pipe.set(order_key, order.model_dump_json())
                pipe.set(ent_key, enterprise.model_dump_json())

            return Decision(BindOutcome(status="bound", order=order, enterprise=enterprise,
                                        conversion=conversion), writes)

        outcome = await transact(self._redis, [order_key, ent_key], decide)
        _remember(outcome.order, order_id)
        return outcome

    async def expire(self, order_id: str) -> Order | None:
        """Move an overdue pending order to expired; anything else is left as it is."""
        return await self._move(order_id, OrderStatus.EXPIRED, "expired",
                                when=lambda o, now: o.is_overdue(now))

    async def cancel(self, order_id: str, *, user_id: int) -> Order | None:
        """Cancel the buyer's own pending order; an overdue one is expired instead, once."""
        if await self.get(order_id) is None:  # get() expires an overdue order first
            return None
        return await self._move(order_id, OrderStatus.CANCELLED, "cancelled",
                                when=lambda o, now: o.user_id == user_id
                                and o.status is OrderStatus.PENDING and not o.is_overdue(now))

    async def _move(self, order_id: str, to: OrderStatus, kind: str,
                    when: Callable[[Order, datetime], bool]) -> Order | None:
        now = self._clock.now()
        order_key = keys.order(order_id)

        def decide(values: list[str | None]) -> Decision[Order | None]:
            (raw,) = values
            if raw is None:
                return Decision(None)
            order = Order.model_validate_json(raw)
            if not when(order, now):
                return Decision(order)
            order.status = to
            order.events.append(OrderEvent(at=now, kind=kind))
            return Decision(order, lambda pipe: pipe.set(order_key, order.model_dump_json()))

        order = await transact(self._redis, [order_key], decide)
        _remember(order, order_id)
        return order

    async def keep_for_refund(self, order_id: str, *, user_id: int, reason: str) -> Order | None:
        """A paid order that can be bound nowhere (a lower edition than every enterprise the
        buyer could bind it to, R19): cancelled, its payment kept for a refund (R21). Returns
        the order as it is now; None when it is not the buyer's. Repeating it changes nothing."""
        now = self._clock.now()
        order_key = keys.order(order_id)

        def decide(values: list[str | None]) -> Decision[Order | None]:
            (raw,) = values
            order = Order.model_validate_json(raw) if raw else None
            if order is None or order.user_id != user_id:
                return Decision(None)
            if order.status is not OrderStatus.PAID:
                return Decision(order)
            payment = order.paid_payment()
            order.status = OrderStatus.CANCELLED
            order.events.append(OrderEvent(at=now, kind="refund_pending", detail={**payment, "reason": reason}))
            refund = refund_record(payment, order_id, reason, now)
            return Decision(order, lambda pipe: (pipe.set(order_key, order.model_dump_json()),
                                                 pipe.rpush(keys.refunds(), json.dumps(refund))))

        order = await transact(self._redis, [order_key], decide)
        _remember(order, order_id)
        return order

    async def refunds(self) -> list[dict[str, Any]]:
        return await refund_cases(self._redis)


async def refund_cases(redis: Redis) -> list[dict[str, Any]]:
    """The payments kept for a refund (R21), oldest first."""
    return [json.loads(r) for r in await redis.lrange(keys.refunds(), 0, -1)]


def _delivery_problem(order: Order, enterprise: Enterprise, catalog: Catalog, now: datetime) -> str | None:
    """Would delivering this enterprise order now be refused? (a dry run on a copy)"""
    if order.phone and not (enterprise.role_of(order.phone) and enterprise.members[order.phone].can_buy):
        return "no_rights"
    return delivery_problem(enterprise, order, catalog, now)


def refund_record(payment: dict[str, Any], order_id: str, reason: str, now: datetime) -> dict[str, Any]:
    """A payment kept for a refund (R21); its id is the same for the same charge."""
    return {"id": refund_case_id(str(payment.get("charge_id"))), **payment, "order_id": order_id, "reason": reason,
            "at": now.isoformat()}


def refund_case_id(charge_id: str) -> str:
    """The refund case of a charge; also the refund's id at the provider (its idempotency key)."""
    return "rf_" + hashlib.sha256(charge_id.encode()).hexdigest()[:12]


def _payment_problem(order: Order, now: datetime, amount_fen: int, currency: str) -> str | None:
    if order.status is OrderStatus.PENDING and order.is_overdue(now):
        return "expired"
    if order.status in (OrderStatus.PAID, OrderStatus.BOUND):
        return "already_paid"  # the same word check_payable uses
    if order.status is not OrderStatus.PENDING:
        return str(order.status.value)  # expired, cancelled
    if not order.charged(amount_fen, currency):
        return "mismatch"
    return None
