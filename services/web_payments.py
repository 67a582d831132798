"""A web order's payment at its provider: opened in one way, followed, and closed when the order
expires unpaid.

- `open(order, method, ...)`: the payment at the chosen gateway, in the chosen way (WeChat Pay
  native QR, H5 or JSAPI; Alipay's computer or phone cashier; the sandbox). An order is paid one
  way at a time: two open ways could both take money. Choosing another provider closes the first
  one at its provider first; when that one turns out paid, the payment is applied instead of
  opening another. Within WeChat Pay the first scene stays: it refuses the same out_trade_no in
  another scene, and any scene once it is closed.
- `follow(order)`: the buyer's page waits for the notice; after a while it asks the provider
  (at most once per FOLLOW_SECONDS per order), and a payment the provider confirms, in its signed
  answer, is applied like a notice.
- `cancel(order_id, user_id)`: the buyer cancels the order; its payment is closed at the
  provider at once (not only at expiry). One paid meanwhile is kept and applied: a cancelled
  order's payment becomes a refund case (R21).
- `close_expired()`: the scheduler closes, at their providers, the payments of orders that
  expired unpaid (or were cancelled while the provider could not be reached), so that nobody
  pays them later; one paid meanwhile is applied (a refund case, R21).

What is open is kept in Redis: `{esign}:web-payment:<order>` (gateway, way, the provider's
payment) and `{esign}:web-payments:open` (order ids by expiry).
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel
from redis.asyncio import Redis

from services import keys
from services.alipay import AlipayGateway, AlipayRequest
from services.checkout import NoticeOutcome, WebCheckout
from services.clock import Clock
from services.orders import Order, OrderService, OrderStatus
from services.payment_gateway import PaymentGateway, PaymentNotice, PaymentRequest, PaymentStatus, SandboxGateway
from services.payment_refunds import ProviderError
from services.redis_text import text
from services.wechat_pay import WechatPayGateway, WechatPayRequest, WechatPaySession

log = logging.getLogger(__name__)

# way: WeChat Pay's scene (native, h5, jsapi), Alipay's device (pc, wap), or "cashier" (the sandbox).
Way = Literal["native", "h5", "jsapi", "pc", "wap", "cashier"]
FOLLOW_SECONDS = 10  # the page asks the provider at most this often per order
RECORD_GRACE = timedelta(days=2)  # the record outlives the order's expiry by this much
CLOSE_BATCH = 200
CLOSED = (OrderStatus.EXPIRED, OrderStatus.CANCELLED)
WECHAT_SCENES: dict[str, Literal["native", "h5", "jsapi"]] = {"native": "native", "h5": "h5", "jsapi": "jsapi"}


class PaymentMethod(BaseModel):
    gateway: str
    way: Way


class OpenPayment(BaseModel):
    """What the page needs to send the buyer on: a URL (H5, Alipay, the sandbox), a code to show
    as a QR (native), or the prepay id for WeChat's in-browser sheet (JSAPI)."""

    gateway: str
    way: Way
    payment_id: str
    pay_url: str = ""
    code_url: str | None = None
    prepay_id: str | None = None  # JSAPI: the sheet's parameters are signed afresh from it when shown
    opened_at: datetime


class Applied(BaseModel):
    """A payment the provider confirmed when asked, applied like its notice."""

    gateway: str
    notice: PaymentNotice
    outcome: NoticeOutcome


class Opened(BaseModel):
    status: Literal["open", "paid"]  # paid: the way opened before was paid meanwhile
    payment: OpenPayment | None = None
    applied: Applied | None = None


class Cancelled(BaseModel):
    """The buyer's cancel: the order as it is now, and the payment found made at the provider
    when closing it (applied: kept for a refund, R21)."""

    order: Order | None
    applied: Applied | None = None


class WebPayments:
    def __init__(self, redis: Redis, clock: Clock, gateways: list[PaymentGateway], orders: OrderService,
                 checkout: WebCheckout) -> None:
        self._redis = redis
        self._clock = clock
        self._gateways = {g.name: g for g in gateways}
        self._orders = orders
        self._checkout = checkout

    def gateway(self, name: str) -> PaymentGateway | None:
        return self._gateways.get(name)

    async def current(self, order_id: str) -> OpenPayment | None:
        raw = await self._redis.get(keys.web_payment(order_id))
        return OpenPayment.model_validate_json(raw) if raw else None

    async def open(self, order: Order, method: PaymentMethod, *, description: str, notify_url: str, return_url: str,
                   client_ip: str | None = None, openid: str | None = None) -> Opened:
        gateway = self._gateways.get(method.gateway)
        if gateway is None:
            raise ValueError(f"no gateway {method.gateway!r}")
        before = await self.current(order.id)
        if before is not None and (before.gateway, before.way) != (method.gateway, method.way):
            if before.gateway == gateway.name and isinstance(gateway, WechatPayGateway):
                # WeChat Pay takes one scene per out_trade_no, and none once it is closed: the way
                # opened first stays the order's (a QR code works on a phone and inside WeChat too).
                log.info("web_payment.kept order=%s way=%s asked=%s", order.id, before.way, method.way)
                return Opened(status="open", payment=before)
            paid = await self._close_or_apply(order, before)
            if paid is not None:
                return Opened(status="paid", applied=paid)
        request = PaymentRequest(order_id=order.id, amount_fen=order.total_fen, currency=order.currency,
                                 description=description, notify_url=notify_url, return_url=return_url)
        if isinstance(gateway, WechatPayGateway):
            if method.way not in WECHAT_SCENES:
                raise ValueError(f"WeChat Pay has no way {method.way!r}")
            request = WechatPayRequest(**request.model_dump(), scene=WECHAT_SCENES[method.way], client_ip=client_ip,
                                       openid=openid, expires_at=order.expires_at)
        elif isinstance(gateway, AlipayGateway):
            request = AlipayRequest(**request.model_dump(), device="wap" if method.way == "wap" else "pc",
                                    expires_at=order.expires_at)
        session = await gateway.create_payment(request)
        opened = OpenPayment(gateway=gateway.name, way=method.way, payment_id=session.payment_id,
                             pay_url=session.pay_url, opened_at=self._clock.now())
        if isinstance(session, WechatPaySession):
            opened.code_url, opened.prepay_id = session.code_url, session.prepay_id
        keep = max(60, int((order.expires_at + RECORD_GRACE - self._clock.now()).total_seconds()))
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.set(keys.web_payment(order.id), opened.model_dump_json(), ex=keep)
            pipe.zadd(keys.open_web_payments(), {order.id: order.expires_at.timestamp()})
            await pipe.execute()
        log.info("web_payment.opened order=%s gateway=%s way=%s", order.id, gateway.name, method.way)
        return Opened(status="open", payment=opened)

    async def follow(self, order: Order) -> Applied | None:
        """Ask the provider about a pending order the buyer is waiting on (not more than once per
        FOLLOW_SECONDS); the outcome when that applied a payment, else None."""
        if order.status is not OrderStatus.PENDING:
            return None
        opened = await self.current(order.id)
        if opened is None or self._clock.now() - opened.opened_at < timedelta(seconds=FOLLOW_SECONDS):
            return None
        if not await self._redis.set(keys.web_query(order.id), 1, nx=True, ex=FOLLOW_SECONDS):
            return None
        gateway = self._gateways.get(opened.gateway)
        if gateway is None:
            return None
        try:
            status = await gateway.query(order.id)
        except ProviderError as error:
            log.info("web_payment.follow_failed order=%s code=%s", order.id, error.code)
            return None
        return await self._apply_if_paid(gateway, status)

    async def cancel(self, order_id: str, *, user_id: int) -> Cancelled:
        """Cancel the buyer's own pending order and close its payment at the provider at once, so
        that nobody pays it later. A payment the provider says was made meanwhile is kept (money
        first): applied to the cancelled order, it becomes a refund case. When the provider cannot
        be reached, the scheduler's next tick closes it (close_expired)."""
        order = await self._orders.cancel(order_id, user_id=user_id)
        if order is None or order.status is not OrderStatus.CANCELLED:
            return Cancelled(order=order)
        opened = await self.current(order_id)
        if opened is None:
            return Cancelled(order=order)
        await self._redis.zadd(keys.open_web_payments(), {order_id: self._clock.now().timestamp()})
        try:
            applied = await self._close_or_apply(order, opened)
        except ProviderError as error:
            log.warning("web_payment.close_failed order=%s code=%s", order_id, error.code)
            return Cancelled(order=order)
        await self._redis.zrem(keys.open_web_payments(), order_id)
        return Cancelled(order=applied.outcome.order or order if applied else order, applied=applied)

    async def close_expired(self) -> list[Applied]:
        """Close at their providers the payments of orders that can no longer be paid. Returns
        the payments found made meanwhile (now applied: kept for a refund, or paid)."""
        now = self._clock.now()
        due = await self._redis.zrangebyscore(keys.open_web_payments(), "-inf", now.timestamp(), start=0,
                                              num=CLOSE_BATCH)
        applied: list[Applied] = []
        for order_id in (text(i) for i in due):
            order = await self._orders.get(order_id)  # an overdue one is expired by this read
            opened = await self.current(order_id)
            if order is not None and order.status is OrderStatus.PENDING:
                await self._redis.zadd(keys.open_web_payments(), {order_id: order.payable_until().timestamp()})
                continue  # still payable (a held order): looked at again then
            try:
                outcome = (await self._close_or_apply(order, opened)
                           if order is not None and opened is not None and order.status in CLOSED else None)
            except ProviderError as error:
                log.warning("web_payment.close_failed order=%s code=%s", order_id, error.code)
                continue  # the next tick tries again
            if outcome is not None:
                applied.append(outcome)
            await self._redis.zrem(keys.open_web_payments(), order_id)
        return applied

    async def _close_or_apply(self, order: Order, opened: OpenPayment) -> Applied | None:
        """Close a payment at its provider; when it was paid, apply it and return the outcome."""
        gateway = self._gateways.get(opened.gateway)
        if gateway is None:
            return None
        if isinstance(gateway, WechatPayGateway | AlipayGateway):
            result: str = await gateway.close_payment(order.id)
        elif isinstance(gateway, SandboxGateway):
            cancelled = await gateway.cancel(opened.payment_id)
            result = "already_paid" if cancelled is not None and cancelled.status == "paid" else "closed"
        else:
            result = "not_found"
        log.info("web_payment.closed order=%s gateway=%s result=%s", order.id, gateway.name, result)
        if result != "already_paid":
            await self._redis.delete(keys.web_payment(order.id))
            return None
        return await self._apply_if_paid(gateway, await gateway.query(order.id))

    async def _apply_if_paid(self, gateway: PaymentGateway, status: PaymentStatus | None) -> Applied | None:
        if status is None or status.status != "paid":
            return None
        notice = PaymentNotice(payment_id=status.payment_id, order_id=status.order_id, amount_fen=status.amount_fen,
                               currency=status.currency, status="paid", paid_at=status.paid_at or self._clock.now())
        outcome = await self._checkout.apply_notice(notice, provider=gateway.name)
        log.info("web_payment.applied_from_query order=%s gateway=%s outcome=%s", status.order_id, gateway.name,
                 outcome.status)
        return Applied(gateway=gateway.name, notice=notice, outcome=outcome)
