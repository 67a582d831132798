"""Refunds through the rail that took the money (R21), and what the provider adapters share.

A payment kept for a refund is paid back by the gateway that took it, through
`RefundingGateway.refund(...)`. The refund is named by *our* refund id (the refund case's id,
`rf_<hex>` in services.orders), sent to the provider as its idempotency key (WeChat Pay's
`out_refund_no`, Alipay's `out_request_no`): asking again with the same id, after a timeout or a
crash, returns the refund already made and never pays twice.

Providers tell of a refund's outcome asynchronously as well: `notice_kind(body, headers)` lets
the notify endpoint route a notice before verifying it (WeChat Pay's `event_type`, Alipay's
`refund_fee` on its trade notice), and `verify_refund_notice(body, headers)` checks it like a
payment notice (raising `NoticeRejected`).
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Literal, Protocol, runtime_checkable

from pydantic import BaseModel

# processing: asked, money not yet back; succeeded: back with the buyer; closed/abnormal: the
# provider gave up (WeChat Pay's CLOSED and ABNORMAL need a person: another account, by hand).
RefundState = Literal["processing", "succeeded", "closed", "abnormal"]

# payment: a payment notice (verify_notice); refund: a refund's outcome (verify_refund_notice);
# other: nothing to store (e.g. Alipay telling that an unpaid trade was closed): answer success.
NoticeKind = Literal["payment", "refund", "other"]

# The characters both providers accept in out_refund_no / out_request_no, at most 64.
REFUND_ID_PATTERN = re.compile(r"^[0-9A-Za-z_\-|*@]{1,64}$")


class RefundResult(BaseModel):
    refund_id: str  # ours: the same id is the same refund
    order_id: str
    amount_fen: int  # this refund
    status: RefundState
    payment_id: str | None = None  # the provider's id of the payment refunded
    provider_refund_id: str | None = None  # WeChat Pay's refund_id; Alipay has none per refund
    refunded_at: datetime | None = None


class RefundNotice(BaseModel):
    """A verified refund notice: the provider says where this refund stands."""

    refund_id: str
    order_id: str
    payment_id: str
    status: RefundState
    amount_fen: int | None = None  # this refund (WeChat Pay); Alipay's notice only has the total
    refunded_total_fen: int | None = None  # all refunds of the payment so far (Alipay)
    provider_refund_id: str | None = None
    refunded_at: datetime | None = None


class ProviderError(Exception):
    """The provider could not be asked, refused the request, or answered something unusable."""

    def __init__(self, code: str, message: str = "", *, status: int = 0) -> None:
        super().__init__(f"{code}: {message}" if message else code)
        self.code = code
        self.message = message
        self.status = status


class ResponseNotTrusted(ProviderError):
    """The answer's signature does not verify: it did not come from the provider, act on nothing."""

    def __init__(self, message: str = "") -> None:
        super().__init__("bad_response_signature", message)


class RefundRefused(ProviderError):
    """The provider will not make this refund (more than is left, an unpaid payment, a refund id
    already used for another amount)."""


@runtime_checkable
class RefundingGateway(Protocol):
    name: str

    async def refund(self, *, order_id: str, refund_id: str, amount_fen: int, total_fen: int,
                     reason: str) -> RefundResult:
        """Pay back `amount_fen` of the payment of `total_fen` that took the money for the order;
        the same `refund_id` again returns the refund already made."""
        ...

    async def query_refund(self, *, order_id: str, refund_id: str) -> RefundResult | None: ...

    def notice_kind(self, body: bytes, headers: Mapping[str, str]) -> NoticeKind:
        """Which kind of notice this claims to be (unverified: only to choose how to verify it)."""
        ...

    def verify_refund_notice(self, body: bytes, headers: Mapping[str, str]) -> RefundNotice: ...


def check_refund(refund_id: str, amount_fen: int, total_fen: int) -> None:
    """Refuse locally what no provider would take, before anything is sent."""
    if not REFUND_ID_PATTERN.match(refund_id):
        raise ValueError("refund id: 1-64 of 0-9 A-Z a-z _ - | * @")
    if not 0 < amount_fen <= total_fen:
        raise ValueError("refund amount must be more than 0 and at most the payment's total")


def header(headers: Mapping[str, str], name: str) -> str:
    """A header by name whatever its case (aiohttp's headers are case-insensitive, a dict is not)."""
    value = headers.get(name)
    if value is not None:
        return value
    lowered = name.lower()
    return next((v for k, v in headers.items() if k.lower() == lowered), "")
