"""Reconciliation (docs/reliability.md, docs/payments.md): which web orders, and which refunds,
does a payment provider see differently from Redis?

Read-only: it reads each web order straight from Redis (no lazy expiry, no write) and asks the
provider through the `PaymentGateway` interface (`query(order_id)`), so a real provider's
adapter is reconciled exactly like the sandbox; with several gateways, each order is asked of
the one it was opened at (or paid through), else of each. Refund cases are asked of their
provider (`query_refund`). A time window (`since`) limits both to what was created since.
It reports; it never applies or refunds.

Problems reported:
- `paid_at_gateway_not_in_redis`: the gateway took the money, Redis never recorded that
  payment (the notice was lost or refused): pay it or refund it by hand;
- `paid_in_redis_not_at_gateway`: Redis says the order was paid through this gateway, but the
  gateway does not know the order, or its payment is not paid;
- `other_payment`: Redis and the gateway name different payments for the same order;
- `amount_differs`: the gateway's paid amount is not the order's total;
- refunds: `refunded_here_not_at_provider` (the case says refunded, the provider knows no such
  refund), `refunded_at_provider_not_here` (the provider made it, the case does not say so),
  `refund_amount_differs`, `refunded_by_hand_and_at_provider` (recorded as paid back by hand, and
  the provider refunded it too: paid twice).
"""
from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from redis.asyncio import Redis

from services import keys
from services.checkout import charge_id
from services.orders import Channel, Order, OrderStatus
from services.payment_gateway import PaymentGateway, PaymentStatus
from services.payment_refunds import ProviderError, RefundingGateway
from services.redis_text import text
from services.refunds import BY_HAND, RefundCase, RefundService
from services.web_payments import OpenPayment

PAID_STATES = (OrderStatus.PAID, OrderStatus.BOUND)


@dataclass(frozen=True)
class Mismatch:
    order_id: str
    problem: str
    redis_status: str
    gateway_status: str  # "unknown" when the gateway has no payment for the order
    detail: str = ""

    def line(self) -> str:
        text = (f"{self.order_id}  {self.problem}  redis={self.redis_status}  "
                f"gateway={self.gateway_status}")
        return text + (f"  {self.detail}" if self.detail else "")


@dataclass
class Report:
    gateway: str
    checked: int = 0
    mismatches: list[Mismatch] = field(default_factory=list)
    refunds_checked: int = 0

    @property
    def consistent(self) -> bool:
        return not self.mismatches

    def summary(self) -> str:
        line = (f"{self.checked} web order(s) checked against gateway {self.gateway}: "
                f"{len(self.mismatches)} mismatch(es)")
        return line + (f"; {self.refunds_checked} refund(s) checked" if self.refunds_checked else "")


class Reconciler:
    def __init__(self, redis: Redis, gateway: PaymentGateway | Sequence[PaymentGateway], *, scan_count: int = 500,
                 refunds: RefundService | None = None, since: datetime | None = None) -> None:
        self._redis = redis
        self._gateways = [gateway] if isinstance(gateway, PaymentGateway) else list(gateway)
        self._scan_count = scan_count
        self._refunds = refunds
        self._since = since

    def _paid_through(self, order: Order) -> PaymentGateway | None:
        return next((g for g in self._gateways if (order.charge_id or "").startswith(charge_id(g.name, ""))), None)

    async def orders(self) -> AsyncIterator[Order]:
        """Every order a gateway may know of (web orders, and any order paid through one), created
        in the window."""
        async for key in self._redis.scan_iter(match=keys.order("*"), count=self._scan_count):
            raw = await self._redis.get(text(key))
            if raw is None:
                continue  # gone since the scan
            try:
                order = Order.model_validate_json(raw)
            except ValueError:
                continue  # not an order record
            if self._since is not None and order.created_at < self._since:
                continue
            if order.channel is Channel.WEB or self._paid_through(order) is not None:
                yield order

    async def _gateways_of(self, order: Order) -> list[PaymentGateway]:
        """The gateway the order was paid through or opened at; else every one."""
        paid = self._paid_through(order)
        if paid is not None:
            return [paid]
        raw = await self._redis.get(keys.web_payment(order.id))
        opened = OpenPayment.model_validate_json(raw).gateway if raw else None
        return [g for g in self._gateways if g.name == opened] or self._gateways

    async def check(self, order: Order) -> Mismatch | None:
        """The one problem of this order, or None when Redis and the gateways agree."""
        for gateway in await self._gateways_of(order):
            found = await self._check_at(order, gateway)
            if found is not None:
                return found
        return None

    async def _check_at(self, order: Order, gateway: PaymentGateway) -> Mismatch | None:
        status: PaymentStatus | None = await gateway.query(order.id)
        gw_status = status.status if status else "unknown"
        ours = (order.charge_id or "").startswith(charge_id(gateway.name, ""))
        paid_here = order.status in PAID_STATES and ours

        def mismatch(problem: str, detail: str = "") -> Mismatch:
            return Mismatch(order.id, problem, order.status.value, gw_status,
                            detail if len(self._gateways) == 1 else f"{detail} at={gateway.name}".strip())

        if status is not None and status.status == "paid":
            charge = charge_id(gateway.name, status.payment_id)
            if paid_here and order.charge_id != charge:
                return mismatch("other_payment", f"redis_charge={order.charge_id} gateway_charge={charge}")
            if status.amount_fen != order.total_fen or status.currency != order.currency:
                return mismatch("amount_differs", f"order={order.total_fen} {order.currency} "
                                                  f"gateway={status.amount_fen} {status.currency}")
            # Recorded: paid, or kept for a refund (an expired or cancelled order); both are known.
            if not await self._redis.exists(keys.charge(charge)):
                return mismatch("paid_at_gateway_not_in_redis", f"payment={status.payment_id}")
            return None
        if paid_here:
            return mismatch("paid_in_redis_not_at_gateway", f"redis_charge={order.charge_id}")
        return None

    async def check_refund(self, case: RefundCase) -> Mismatch | None:
        """Does the refund's provider agree with the case?"""
        gateway = next((g for g in self._gateways if g.name == case.provider), None)
        if not isinstance(gateway, RefundingGateway):
            return None
        made = await gateway.query_refund(order_id=case.order_id, refund_id=case.id)
        here = case.state.status
        there = made.status if made else "unknown"

        def mismatch(problem: str, detail: str = "") -> Mismatch:
            return Mismatch(case.order_id, problem, f"refund {case.id} {here}", there, detail)

        if case.state.provider_status == BY_HAND:
            # Paid back outside the bot: the provider knows no refund of ours, unless it was paid twice.
            if made is not None and made.status in ("succeeded", "processing"):
                return mismatch("refunded_by_hand_and_at_provider", f"refund={made.amount_fen}")
            return None
        if here == "refunded" and (made is None or made.status != "succeeded"):
            return mismatch("refunded_here_not_at_provider")
        if made is not None and made.status == "succeeded" and here != "refunded":
            return mismatch("refunded_at_provider_not_here", f"refund={made.amount_fen}")
        if made is not None and case.state.refunded_fen is not None and made.amount_fen != case.state.refunded_fen:
            return mismatch("refund_amount_differs", f"here={case.state.refunded_fen} provider={made.amount_fen}")
        return None

    async def run(self) -> Report:
        report = Report(gateway=",".join(g.name for g in self._gateways))
        async for order in self.orders():
            report.checked += 1
            found = await self.check(order)
            if found is not None:
                report.mismatches.append(found)
        if self._refunds is not None:
            for case in await self._refunds.cases():
                if self._since is not None and case.at < self._since.isoformat():
                    continue
                if case.provider not in {g.name for g in self._gateways}:
                    continue  # Telegram's: nothing to ask
                report.refunds_checked += 1
                try:
                    found = await self.check_refund(case)
                except ProviderError as error:
                    found = Mismatch(case.order_id, "refund_not_checked", f"refund {case.id}", "error", error.code)
                if found is not None:
                    report.mismatches.append(found)
        report.mismatches.sort(key=lambda m: m.order_id)
        return report
