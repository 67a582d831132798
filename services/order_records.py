"""What an order is: its record, states, kinds and history (services/orders.py keeps and changes
them; services/delivery.py reads them to deliver)."""
from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Any

from pydantic import BaseModel, Field

from services.catalog import QuoteLine
from services.clock import add_years

STARS = "XTR"  # Telegram Stars: whole stars, paid in chat


class OrderStatus(str, Enum):
    PENDING = "pending_payment"
    PAID = "paid"
    BOUND = "bound"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


class Channel(str, Enum):
    CHAT = "chat"
    WEB = "web"
    CONSULTATION = "consultation"


class OrderKind(str, Enum):
    EDITION = "edition"  # an edition (F2, or from an enterprise's billing screen)
    RENEWAL = "renewal"  # 版本续费 (R4, F7)
    UPGRADE = "upgrade"  # 升级版本 (R4, R5, F8)
    SERVICE = "service"  # 增值服务 (R6–R8, F9)


class UpgradeBasis(BaseModel):
    """What an upgrade was priced on: delivery refuses it if the enterprise has changed since."""

    from_edition: str
    expires_at: datetime
    days_left: int


class DeliveryNote(BaseModel):
    """The enterprise's account right after this order was delivered (shown to the buyer)."""

    enterprise_name: str
    edition: str
    expires_at: datetime | None
    contracts_left: int
    services: dict[str, int] = Field(default_factory=dict)
    subscriptions: dict[str, datetime] = Field(default_factory=dict)


class OrderEvent(BaseModel):
    at: datetime
    kind: str
    detail: dict[str, Any] = Field(default_factory=dict)


class Order(BaseModel):
    id: str
    user_id: int
    chat_id: int
    channel: Channel
    status: OrderStatus
    lines: list[QuoteLine]
    total_fen: int
    currency: str
    total_stars: int | None = None  # the same order in Telegram Stars, when the catalog prices them
    edition: str
    years: int
    pack: str | None
    contracts: int
    enterprise_name: str | None = None  # as the buyer typed it (R11)
    phone: str | None = None  # the buyer's verified phone, E.164
    enterprise_id: str | None = None  # set when bound (R12)
    created_at: datetime
    expires_at: datetime
    paid_at: datetime | None = None
    charge_id: str | None = None
    bound_at: datetime | None = None
    events: list[OrderEvent] = Field(default_factory=list)
    kind: OrderKind = OrderKind.EDITION
    for_enterprise: bool = False  # enterprise_id known at purchase: delivered on payment
    upgrade: UpgradeBasis | None = None  # kind upgrade
    delivery: DeliveryNote | None = None  # set when delivered
    # An approved pre-checkout holds the order for the payment that follows (R20), even past
    # its own expiry.
    held_until: datetime | None = None

    def payable_until(self) -> datetime:
        return max(self.expires_at, self.held_until) if self.held_until else self.expires_at

    def is_overdue(self, now: datetime) -> bool:
        return self.status is OrderStatus.PENDING and now >= self.payable_until()

    def term_ends_at(self) -> datetime | None:
        """When a bought edition's term ends: it starts at the purchase, bound or not (R13)."""
        if self.kind is not OrderKind.EDITION or self.paid_at is None:
            return None
        return add_years(self.paid_at, self.years)

    @property
    def paid_provider(self) -> str:
        """The rail that took the payment (telegram, a web gateway's name), if paid."""
        return str(self.paid_payment().get("provider", ""))

    def paid_payment(self) -> dict[str, Any]:
        """The payment applied to the order, as recorded (charge, amount, currency, provider)."""
        paid = next((e for e in reversed(self.events) if e.kind == "paid"), None)
        if paid is None:
            return {"charge_id": self.charge_id, "amount_fen": self.total_fen, "currency": self.currency,
                    "provider": ""}
        return dict(paid.detail)

    def charged(self, amount: int, currency: str) -> bool:
        """Is this the order's price: its total in its currency, or its star price in XTR?"""
        if currency == STARS:
            return self.total_stars is not None and amount == self.total_stars
        return amount == self.total_fen and currency == self.currency

    @property
    def refund_pending(self) -> bool:
        """The money taken for it is kept for a refund (R21)."""
        return any(event.kind == "refund_pending" for event in self.events)
