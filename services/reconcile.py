"""Reconciliation (docs/reliability.md): which web orders does the payment gateway see
differently from Redis?

Read-only: it reads each web order straight from Redis (no lazy expiry, no write) and asks the
gateway through the `PaymentGateway` interface (`query(order_id)`), so a real provider's
adapter is reconciled exactly like the sandbox. It reports; it never applies or refunds.

Problems reported:
- `paid_at_gateway_not_in_redis`: the gateway took the money, Redis never recorded that
  payment (the notice was lost or refused): pay it or refund it by hand;
- `paid_in_redis_not_at_gateway`: Redis says the order was paid through this gateway, but the
  gateway does not know the order, or its payment is not paid;
- `other_payment`: Redis and the gateway name different payments for the same order;
- `amount_differs`: the gateway's paid amount is not the order's total.
"""
from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from redis.asyncio import Redis

from services import keys
from services.checkout import charge_id
from services.orders import Channel, Order, OrderStatus
from services.payment_gateway import PaymentGateway, PaymentStatus
from services.redis_text import text

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

    @property
    def consistent(self) -> bool:
        return not self.mismatches

    def summary(self) -> str:
        return (f"{self.checked} web order(s) checked against gateway {self.gateway}: "
                f"{len(self.mismatches)} mismatch(es)")


class Reconciler:
    def __init__(self, redis: Redis, gateway: PaymentGateway, *, scan_count: int = 500) -> None:
        self._redis = redis
        self._gateway = gateway
        self._scan_count = scan_count

    @property
    def _prefix(self) -> str:
        return charge_id(self._gateway.name, "")

    async def orders(self) -> AsyncIterator[Order]:
        """Every order the gateway may know of: web orders, and any order paid through it."""
        async for key in self._redis.scan_iter(match=keys.order("*"), count=self._scan_count):
            raw = await self._redis.get(text(key))
            if raw is None:
                continue  # gone since the scan
            try:
                order = Order.model_validate_json(raw)
            except ValueError:
                continue  # not an order record
            if order.channel is Channel.WEB or (order.charge_id or "").startswith(self._prefix):
                yield order

    async def check(self, order: Order) -> Mismatch | None:
        """The one problem of this order, or None when Redis and the gateway agree."""
        status: PaymentStatus | None = await self._gateway.query(order.id)
        gw_status = status.status if status else "unknown"
        ours = (order.charge_id or "").startswith(self._prefix)
        paid_here = order.status in PAID_STATES and ours

        def mismatch(problem: str, detail: str = "") -> Mismatch:
            return Mismatch(order.id, problem, order.status.value, gw_status, detail)

        if status is not None and status.status == "paid":
            charge = charge_id(self._gateway.name, status.payment_id)
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

    async def run(self) -> Report:
        report = Report(gateway=self._gateway.name)
        async for order in self.orders():
            report.checked += 1
            found = await self.check(order)
            if found is not None:
                report.mismatches.append(found)
        report.mismatches.sort(key=lambda m: m.order_id)
        return report
