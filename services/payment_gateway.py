"""Web payment gateways (F12): the interface a provider adapter implements, and the sandbox.

The web checkout speaks to a gateway through four calls, whatever the provider:

- `create_payment(request)` opens a payment for an order and says where to send the buyer
  (`PaymentSession.pay_url`: the provider's cashier page);
- the provider later posts an asynchronous payment notice to our notify endpoint;
  `verify_notice(body, headers)` checks its signature and age and returns the `PaymentNotice`
  (or raises `NoticeRejected`: nothing is written then);
- `ack(accepted, reason)` is what the provider expects as the notify endpoint's answer;
- `query(order_id)` asks the provider where a payment stands (reconciliation).

`SandboxGateway` stands in for WeChat Pay / Alipay outside production: its cashier page (served
by the web app) offers pay and cancel; paying posts a notice signed with HMAC-SHA256 over the
timestamp and the body, in the background, retried while the endpoint fails (as providers do).

No aiohttp.web here: the sandbox's page lives in bot/web; this module keeps its records and
sends its notices (with the aiohttp client, like services/sms.py).
"""
from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import secrets
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import Literal, Protocol, runtime_checkable

import aiohttp
from pydantic import BaseModel, ValidationError
from redis.asyncio import Redis

from services import keys
from services.clock import Clock
from services.payment_refunds import NoticeKind, RefundNotice, RefundRefused, RefundResult, check_refund
from services.redis_text import text_or_none
from services.transactions import Decision, transact

log = logging.getLogger(__name__)

NoticeProblem = Literal["bad_signature", "stale", "malformed"]


class PaymentRequest(BaseModel):
    order_id: str
    amount_fen: int
    currency: str
    description: str
    notify_url: str  # where the provider posts the payment notice
    return_url: str  # where the provider sends the buyer back afterwards


class PaymentSession(BaseModel):
    payment_id: str  # the provider's id for this payment (becomes the order's charge id)
    pay_url: str  # the provider's cashier page


class PaymentNotice(BaseModel):
    """A verified notice: the provider says this payment was made."""

    payment_id: str
    order_id: str
    amount_fen: int
    currency: str
    status: Literal["paid"]
    paid_at: datetime


class PaymentStatus(BaseModel):
    payment_id: str
    order_id: str
    amount_fen: int
    currency: str
    status: Literal["created", "paid", "cancelled"]
    paid_at: datetime | None = None


class NoticeAck(BaseModel):
    status: int
    body: str
    content_type: str = "application/json"


class NoticeRejected(Exception):
    """The notice cannot be trusted (forged, stale or unreadable): refuse it, write nothing."""

    def __init__(self, reason: NoticeProblem) -> None:
        super().__init__(reason)
        self.reason = reason


@runtime_checkable
class PaymentGateway(Protocol):
    name: str  # the notify endpoint is /payments/notify/<name>

    @property
    def form_action_origins(self) -> list[str]:
        """Origins the buyer is redirected to after a form (the cashier page), for the CSP."""
        ...

    async def create_payment(self, request: PaymentRequest) -> PaymentSession: ...

    def verify_notice(self, body: bytes, headers: Mapping[str, str]) -> PaymentNotice: ...

    def ack(self, accepted: bool, reason: str = "") -> NoticeAck: ...

    async def query(self, order_id: str) -> PaymentStatus | None: ...

    async def close(self) -> None: ...


# --- the sandbox -------------------------------------------------------------------------------

SIGNATURE_HEADER = "X-Sandbox-Signature"
TIMESTAMP_HEADER = "X-Sandbox-Timestamp"
NOTICE_ID_HEADER = "X-Sandbox-Notice-Id"
RECORD_SECONDS = 7 * 86400  # sandbox payments are kept this long
# A notice is retried while the endpoint does not answer or answers 5xx (a 4xx is a refusal).
RETRY_DELAYS = (0.5, 1.0, 2.0, 4.0, 8.0)
DRAIN_SECONDS = 10.0  # drain() waits this long for the notices in flight

Post = Callable[[str, bytes, dict[str, str]], Awaitable[int]]


class SandboxPayment(BaseModel):
    payment_id: str
    order_id: str
    amount_fen: int
    currency: str
    description: str
    notify_url: str
    return_url: str
    status: Literal["created", "paid", "cancelled"] = "created"
    created_at: datetime
    paid_at: datetime | None = None

    def to_status(self) -> PaymentStatus:
        return PaymentStatus(payment_id=self.payment_id, order_id=self.order_id, amount_fen=self.amount_fen,
                             currency=self.currency, status=self.status, paid_at=self.paid_at)


def sign(secret: bytes, timestamp: int | str, body: bytes) -> str:
    """HMAC-SHA256 over `<timestamp>.<body>`, hex: the timestamp is signed with the body, so an
    old notice cannot be replayed with a new timestamp."""
    return hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


async def post_json(url: str, body: bytes, headers: dict[str, str]) -> int:
    """POST the body; the HTTP status, or 0 when the endpoint could not be reached."""
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session,
            session.post(url, data=body, headers={**headers, "Content-Type": "application/json"}) as resp,
        ):
            await resp.read()
            return resp.status
    except (TimeoutError, aiohttp.ClientError) as exc:
        log.warning("sandbox.notice_unreachable error=%s", type(exc).__name__)
        return 0


class SandboxGateway:
    """A payment provider in miniature: payments in Redis, a cashier page, signed notices."""

    name = "sandbox"

    def __init__(
        self,
        redis: Redis,
        clock: Clock,
        secret: bytes,
        *,
        pay_base_url: str,
        max_age_seconds: int = 300,
        post: Post | None = None,
        retry_delays: tuple[float, ...] = RETRY_DELAYS,
    ) -> None:
        if not secret:
            raise ValueError("the notify secret must not be empty")
        self._redis = redis
        self._clock = clock
        self._secret = secret
        self._pay_base = pay_base_url.rstrip("/")
        self.max_age_seconds = max_age_seconds
        self._post = post or post_json
        self._retry_delays = retry_delays
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def form_action_origins(self) -> list[str]:
        return []  # the cashier page is served by the same app

    # --- the gateway interface ------------------------------------------------------------------

    async def create_payment(self, request: PaymentRequest) -> PaymentSession:
        """One open payment per order and amount: asking again returns the same cashier page."""
        existing = await self._payment_for_order(request.order_id)
        if (existing is not None and existing.status == "created"
                and existing.amount_fen == request.amount_fen and existing.currency == request.currency):
            return PaymentSession(payment_id=existing.payment_id, pay_url=self.pay_url(existing.payment_id))
        payment = SandboxPayment(
            payment_id="sbx_" + secrets.token_urlsafe(18),
            created_at=self._clock.now(),
            **request.model_dump(),
        )
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.set(keys.sandbox_payment(payment.payment_id), payment.model_dump_json(), ex=RECORD_SECONDS)
            pipe.set(keys.sandbox_order(payment.order_id), payment.payment_id, ex=RECORD_SECONDS)
            await pipe.execute()
        return PaymentSession(payment_id=payment.payment_id, pay_url=self.pay_url(payment.payment_id))

    def verify_notice(self, body: bytes, headers: Mapping[str, str]) -> PaymentNotice:
        timestamp = headers.get(TIMESTAMP_HEADER, "")
        signature = headers.get(SIGNATURE_HEADER, "")
        if not timestamp.isdigit() or not signature:
            raise NoticeRejected("bad_signature")
        if not hmac.compare_digest(sign(self._secret, timestamp, body).encode(), signature.encode()):
            raise NoticeRejected("bad_signature")
        age = self._clock.now().timestamp() - int(timestamp)
        if age > self.max_age_seconds or age < -60:  # a minute of clock skew into the future
            raise NoticeRejected("stale")
        try:
            return PaymentNotice.model_validate_json(body)
        except ValidationError:
            raise NoticeRejected("malformed") from None

    def ack(self, accepted: bool, reason: str = "") -> NoticeAck:
        # The shape WeChat Pay v3 expects: 2xx means "stop sending", anything else "send again".
        if accepted:
            return NoticeAck(status=200, body=json.dumps({"code": "SUCCESS"}))
        return NoticeAck(status=400, body=json.dumps({"code": "FAIL", "message": reason or "refused"}))

    async def query(self, order_id: str) -> PaymentStatus | None:
        payment = await self._payment_for_order(order_id)
        return payment.to_status() if payment else None

    # --- refunds (services.payment_refunds.RefundingGateway): made at once, no notice -------------

    async def refund(self, *, order_id: str, refund_id: str, amount_fen: int, total_fen: int,
                     reason: str) -> RefundResult:
        """Pay back part or all of the order's paid sandbox payment; the same refund id again
        returns the refund already made, as a provider does."""
        check_refund(refund_id, amount_fen, total_fen)
        key = keys.sandbox_refund(refund_id)
        payment = await self._payment_for_order(order_id)
        if payment is None or payment.status != "paid":
            raise RefundRefused("not_paid", "no paid sandbox payment for this order")
        if total_fen != payment.amount_fen:
            raise RefundRefused("total_mismatch", f"the payment was {payment.amount_fen}")
        refunds_key = keys.sandbox_order_refunds(order_id)
        now = self._clock.now()

        def decide(values: list[str | None]) -> Decision[RefundResult | RefundRefused]:
            raw, raw_list = values
            if raw is not None:
                made = RefundResult.model_validate_json(raw)
                if made.amount_fen != amount_fen:
                    return Decision(RefundRefused("refund_id_reused", f"{refund_id} was {made.amount_fen}"))
                return Decision(made)
            refunded = sum(json.loads(raw_list).values()) if raw_list else 0
            if refunded + amount_fen > payment.amount_fen:
                return Decision(RefundRefused("exceeds_payment", "more than is left of the payment"))
            made = RefundResult(refund_id=refund_id, order_id=order_id, amount_fen=amount_fen, status="succeeded",
                                payment_id=payment.payment_id, provider_refund_id="sbxr_" + secrets.token_hex(8),
                                refunded_at=now)
            so_far = {**(json.loads(raw_list) if raw_list else {}), refund_id: amount_fen}
            return Decision(made, lambda pipe: (pipe.set(key, made.model_dump_json(), ex=RECORD_SECONDS),
                                                pipe.set(refunds_key, json.dumps(so_far), ex=RECORD_SECONDS)))

        outcome = await transact(self._redis, [key, refunds_key], decide)
        if isinstance(outcome, RefundRefused):
            raise outcome
        log.info("sandbox.refund order=%s refund=%s amount=%s", order_id, refund_id, amount_fen)
        return outcome

    async def query_refund(self, *, order_id: str, refund_id: str) -> RefundResult | None:
        raw = await self._redis.get(keys.sandbox_refund(refund_id))
        made = RefundResult.model_validate_json(raw) if raw else None
        return made if made is not None and made.order_id == order_id else None

    def notice_kind(self, body: bytes, headers: Mapping[str, str]) -> NoticeKind:
        return "payment"  # the sandbox refunds at once: it sends no refund notices

    def verify_refund_notice(self, body: bytes, headers: Mapping[str, str]) -> RefundNotice:
        raise NoticeRejected("malformed")

    async def close(self) -> None:
        """Stop sending notices (shutdown); a payment already made keeps its record."""
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    # --- the sandbox's own side: its cashier page and its notices ---------------------------------

    def pay_url(self, payment_id: str) -> str:
        return f"{self._pay_base}/sandbox/pay/{payment_id}"

    async def get(self, payment_id: str) -> SandboxPayment | None:
        raw = await self._redis.get(keys.sandbox_payment(payment_id))
        return SandboxPayment.model_validate_json(raw) if raw else None

    async def pay(self, payment_id: str) -> SandboxPayment | None:
        """The buyer pays on the cashier page: the payment is made once, and its notice goes out
        in the background. Paying again re-sends the notice (a provider's retry); a cancelled
        payment stays cancelled. None for an unknown payment."""
        payment = await self._move(payment_id, "paid")
        if payment is not None and payment.status == "paid":
            self.send_notice(payment)
        return payment

    async def cancel(self, payment_id: str) -> SandboxPayment | None:
        return await self._move(payment_id, "cancelled")

    def notice(self, payment: SandboxPayment, *, timestamp: int | None = None) -> tuple[bytes, dict[str, str]]:
        """The body and headers of the notice for a paid payment (tests forge from this too)."""
        body = PaymentNotice(payment_id=payment.payment_id, order_id=payment.order_id,
                             amount_fen=payment.amount_fen, currency=payment.currency, status="paid",
                             paid_at=payment.paid_at or self._clock.now()).model_dump_json().encode()
        ts = int(self._clock.now().timestamp()) if timestamp is None else timestamp
        headers = {TIMESTAMP_HEADER: str(ts), SIGNATURE_HEADER: sign(self._secret, ts, body),
                   NOTICE_ID_HEADER: secrets.token_hex(8)}
        return body, headers

    def send_notice(self, payment: SandboxPayment) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(self._deliver(payment))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def drain(self) -> None:
        """Wait for the notices in flight (tests; a graceful shutdown), DRAIN_SECONDS at most."""
        if self._tasks:
            async with asyncio.timeout(DRAIN_SECONDS):
                await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def _deliver(self, payment: SandboxPayment) -> None:
        for attempt, delay in enumerate((0.0, *self._retry_delays), start=1):
            if delay:
                await asyncio.sleep(delay)
            body, headers = self.notice(payment)  # signed afresh each time, as providers do
            status = await self._post(payment.notify_url, body, headers)
            log.info("sandbox.notice order=%s attempt=%s status=%s", payment.order_id, attempt, status)
            if 200 <= status < 500 and status != 429:
                return  # accepted, or refused for good
        log.warning("sandbox.notice_gave_up order=%s", payment.order_id)

    async def _payment_for_order(self, order_id: str) -> SandboxPayment | None:
        payment_id = text_or_none(await self._redis.get(keys.sandbox_order(order_id)))
        return await self.get(payment_id) if payment_id else None

    async def _move(self, payment_id: str, to: Literal["paid", "cancelled"]) -> SandboxPayment | None:
        key = keys.sandbox_payment(payment_id)
        now = self._clock.now()

        def decide(values: list[str | None]) -> Decision[SandboxPayment | None]:
            (raw,) = values
            if raw is None:
                return Decision(None)
            payment = SandboxPayment.model_validate_json(raw)
            if payment.status != "created":
                return Decision(payment)  # paid stays paid, cancelled stays cancelled
            payment.status = to
            if to == "paid":
                payment.paid_at = now
            return Decision(payment, lambda pipe: pipe.set(key, payment.model_dump_json(), ex=RECORD_SECONDS))

        return await transact(self._redis, [key], decide)


class LazySession:
    """A provider client's one aiohttp session: made on first use (inside the running loop, not
    when the gateway is built at start-up) and closed once."""

    def __init__(self, timeout_seconds: float) -> None:
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self._session: aiohttp.ClientSession | None = None

    def get(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
