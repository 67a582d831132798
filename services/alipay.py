"""Alipay (支付宝开放平台, public-key mode) as a web payment gateway, and its refunds.

- 电脑网站支付 `alipay.trade.page.pay` (device "pc") and 手机网站支付 `alipay.trade.wap.pay`
  (device "wap"): the buyer's browser is sent to the gateway URL with the signed parameters in
  its query; Alipay shows its cashier page there.
- Every request is signed RSA2 (SHA256withRSA, PKCS#1 v1.5) with the app private key over its
  parameters sorted by name, `k=v` joined by `&`, without `sign` and empty values.
- Every answer (`alipay.trade.query`, `.close`, `.refund`, `.fastpay.refund.query`) is verified
  with the Alipay public key over the exact text of its `<method>_response` object.
- The asynchronous notice (a form POST) is verified over its parameters sorted, without
  `sign` and `sign_type`; `trade_status` TRADE_SUCCESS or TRADE_FINISHED is a payment, its
  `total_amount` (yuan, 2 decimals) becomes fen through Decimal, never a float. It is answered
  with the plain text `success` once stored; anything else makes Alipay send it again, 8 times
  over about 25 hours. A refund changes the trade and is told on the same notify URL, with
  `out_biz_no` (our out_request_no) and `refund_fee` (all refunds so far).

Crypto comes from `cryptography`, HTTP from aiohttp; python-alipay-sdk is not used: its client
is synchronous (it would block the event loop or need a thread per call) and signs with
pycryptodomex, a second crypto library for the same three primitives.
"""
from __future__ import annotations

import base64
import json
import logging
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit

import aiohttp
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey

from services.clock import Clock
from services.payment_gateway import (
    LazySession,
    NoticeAck,
    NoticeRejected,
    PaymentNotice,
    PaymentRequest,
    PaymentSession,
    PaymentStatus,
)
from services.payment_refunds import (
    NoticeKind,
    ProviderError,
    RefundNotice,
    RefundRefused,
    RefundResult,
    ResponseNotTrusted,
    check_refund,
)
from services.wechat_pay import rsa_sign, rsa_verify

log = logging.getLogger(__name__)

GATEWAY_URL = "https://openapi.alipay.com/gateway.do"
# Where the buyer's browser goes after our pay form: the gateway, then its cashier pages.
CASHIER_ORIGINS = ("https://openapi.alipay.com", "https://excashier.alipay.com", "https://mclient.alipay.com")
BEIJING = timezone(timedelta(hours=8))
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
SUCCESS_CODE = "10000"
SUBJECT_MAX = 256
# Alipay sends a notice 8 times over about 25 hours; whether a retry carries a fresh notify_time
# is not promised, so the default age limit covers the whole schedule. Applying a payment is
# idempotent, so a replayed genuine notice changes nothing.
NOTICE_MAX_AGE = timedelta(hours=26)
FUTURE_SKEW = timedelta(minutes=5)

AlipayDevice = Literal["pc", "wap"]
CloseOutcome = Literal["closed", "already_paid", "not_found"]

PRODUCT_CODES: dict[AlipayDevice, tuple[str, str]] = {
    "pc": ("alipay.trade.page.pay", "FAST_INSTANT_TRADE_PAY"),
    "wap": ("alipay.trade.wap.pay", "QUICK_WAP_WAY"),
}
TRADE_STATES: dict[str, Literal["created", "paid", "cancelled"]] = {
    "WAIT_BUYER_PAY": "created", "TRADE_SUCCESS": "paid", "TRADE_FINISHED": "paid", "TRADE_CLOSED": "cancelled",
}
PAID_STATES = ("TRADE_SUCCESS", "TRADE_FINISHED")
YUAN = re.compile(r"^(0|[1-9][0-9]*)(\.[0-9]{1,2})?$")
# 业务处理失败: a refusal that a retry with the same out_request_no will not change (ACQ.SYSTEM_ERROR aside).
BUSINESS_REFUSAL = 40004


class AlipayRequest(PaymentRequest):
    device: AlipayDevice = "pc"
    quit_url: str | None = None  # wap: where the cashier page's 返回 goes (default: return_url)
    expires_at: datetime | None = None  # time_expire: no payment after this (the order's expiry)


class AlipaySession(PaymentSession):
    """`pay_url`: the gateway URL with the signed parameters; `payment_id` is our out_trade_no,
    since Alipay names the trade (trade_no) only once the buyer is on its page."""

    device: AlipayDevice


class AlipayStatus(PaymentStatus):
    trade_status: str  # Alipay's own word, for a person reading a reconciliation


# --- money and keys ------------------------------------------------------------------------------


def yuan(fen: int) -> str:
    """Fen to Alipay's amount: 1280000 -> "12800.00"."""
    if fen < 0:
        raise ValueError("negative amount")
    return f"{fen // 100}.{fen % 100:02d}"


def to_fen(amount: str) -> int:
    """Alipay's amount to fen, exactly: "12800.00" -> 1280000; anything else is refused."""
    if not YUAN.match(amount):
        raise ValueError(f"not an amount in yuan: {amount!r}")
    return int(Decimal(amount) * 100)


def load_private_key(text: str | bytes) -> RSAPrivateKey:
    """The app private key: PEM, or the bare base64 Alipay's key tool writes (PKCS#8 or PKCS#1)."""
    data = text.encode() if isinstance(text, str) else text
    key = (serialization.load_pem_private_key(data, password=None) if b"-----BEGIN" in data
           else serialization.load_der_private_key(_unbase64(data), password=None))
    if not isinstance(key, RSAPrivateKey):
        raise ValueError("the app key must be an RSA private key")
    return key


def load_public_key(text: str | bytes) -> RSAPublicKey:
    """The Alipay public key (支付宝公钥): PEM, or bare base64 as the open platform shows it."""
    data = text.encode() if isinstance(text, str) else text
    key: object = (serialization.load_pem_public_key(data) if b"-----BEGIN" in data
                   else serialization.load_der_public_key(_unbase64(data)))
    if not isinstance(key, RSAPublicKey):
        raise ValueError("the Alipay public key must be an RSA public key")
    return key


def _unbase64(data: bytes) -> bytes:
    return base64.b64decode(b"".join(data.split()), validate=True)


def sign_content(params: Mapping[str, str], *, leave_out: frozenset[str]) -> bytes:
    """Sorted `k=v` joined by `&`, empty values left out, as Alipay signs and verifies."""
    return "&".join(f"{k}={v}" for k, v in sorted(params.items()) if k not in leave_out and v != "").encode()


REQUEST_UNSIGNED = frozenset({"sign"})
NOTICE_UNSIGNED = frozenset({"sign", "sign_type"})


def beijing_time(moment: datetime) -> str:
    return moment.astimezone(BEIJING).strftime(TIME_FORMAT)


def parse_beijing(value: str) -> datetime:
    """Alipay's times are Beijing time without a zone; gmt_refund has milliseconds."""
    layout = TIME_FORMAT + ".%f" if "." in value else TIME_FORMAT
    return datetime.strptime(value, layout).replace(tzinfo=BEIJING).astimezone(UTC)


def response_text(text: str, key: str) -> str | None:
    """The exact text of `key`'s value in an answer: Alipay signs those characters, not a
    re-serialisation of them."""
    match = re.search(r'"' + re.escape(key) + r'"\s*:\s*', text)
    if match is None:
        return None
    try:
        _, end = json.JSONDecoder().raw_decode(text, match.end())
    except ValueError:
        return None
    return text[match.end():end]


# --- the gateway ---------------------------------------------------------------------------------


class AlipayGateway:
    """Alipay behind `PaymentGateway` and `RefundingGateway`. Keys are given parsed; nothing here
    reads a file or the environment."""

    name = "alipay"

    def __init__(
        self,
        *,
        app_id: str,
        app_private_key: RSAPrivateKey,
        alipay_public_key: RSAPublicKey,
        clock: Clock,
        gateway_url: str = GATEWAY_URL,
        seller_id: str | None = None,
        payment_ttl: timedelta = timedelta(minutes=30),
        notice_max_age: timedelta = NOTICE_MAX_AGE,
        cashier_origins: tuple[str, ...] | None = None,
        timeout_seconds: float = 10.0,
    ) -> None:
        self.app_id = app_id
        self._key = app_private_key
        self._alipay_key = alipay_public_key
        self._clock = clock
        self._gateway_url = gateway_url
        self._seller_id = seller_id
        self._payment_ttl = payment_ttl
        self.notice_max_age = notice_max_age
        if cashier_origins is None:
            parts = urlsplit(gateway_url)
            cashier_origins = CASHIER_ORIGINS if gateway_url == GATEWAY_URL else (f"{parts.scheme}://{parts.netloc}",)
        self._cashier_origins = list(cashier_origins)
        self._http = LazySession(timeout_seconds)

    @property
    def form_action_origins(self) -> list[str]:
        return list(self._cashier_origins)

    # --- paying ---------------------------------------------------------------------------------

    async def create_payment(self, request: PaymentRequest) -> AlipaySession:
        """The cashier page's URL, signed; nothing is sent: Alipay opens the trade when the buyer
        arrives. Asking again for the same order and amount is the same trade at Alipay."""
        ar = request if isinstance(request, AlipayRequest) else AlipayRequest(**request.model_dump())
        if ar.currency != "CNY":
            raise ValueError("Alipay's web payments take CNY only")
        if ar.amount_fen <= 0:
            raise ValueError("the amount must be positive")
        method, product_code = PRODUCT_CODES[ar.device]
        biz: dict[str, str] = {
            "out_trade_no": ar.order_id,
            "total_amount": yuan(ar.amount_fen),
            "subject": ar.description[:SUBJECT_MAX],
            "product_code": product_code,
            "time_expire": beijing_time(ar.expires_at or self._clock.now() + self._payment_ttl),
        }
        if ar.device == "wap":
            biz["quit_url"] = ar.quit_url or ar.return_url
        params = self.signed_params(method, biz, notify_url=ar.notify_url, return_url=ar.return_url)
        return AlipaySession(payment_id=ar.order_id, pay_url=f"{self._gateway_url}?{urlencode(params)}",
                             device=ar.device)

    def signed_params(self, method: str, biz: Mapping[str, str], *, notify_url: str | None = None,
                      return_url: str | None = None) -> dict[str, str]:
        params = {
            "app_id": self.app_id, "method": method, "format": "JSON", "charset": "utf-8", "sign_type": "RSA2",
            "timestamp": beijing_time(self._clock.now()), "version": "1.0",
            "biz_content": json.dumps(biz, ensure_ascii=False, separators=(",", ":")),
        }
        if notify_url:
            params["notify_url"] = notify_url
        if return_url:
            params["return_url"] = return_url
        params["sign"] = rsa_sign(self._key, sign_content(params, leave_out=REQUEST_UNSIGNED))
        return params

    async def query(self, order_id: str) -> AlipayStatus | None:
        try:
            answer = await self._call("alipay.trade.query", {"out_trade_no": order_id})
        except ProviderError as error:
            if error.code == "ACQ.TRADE_NOT_EXIST" and not isinstance(error, ResponseNotTrusted):
                return None  # the buyer never reached the cashier page
            raise
        trade_status = str(answer.get("trade_status", ""))
        if answer.get("out_trade_no") != order_id or trade_status not in TRADE_STATES:
            raise ProviderError("unexpected_answer", f"trade {answer.get('out_trade_no')} {trade_status}")
        paid_at = answer.get("send_pay_date")
        try:
            amount_fen = to_fen(str(answer.get("total_amount", "")))
            paid = parse_beijing(paid_at) if isinstance(paid_at, str) and paid_at else None
        except ValueError:
            raise ProviderError("unexpected_answer", "amount or time") from None
        return AlipayStatus(payment_id=str(answer.get("trade_no") or order_id), order_id=order_id,
                            amount_fen=amount_fen, currency="CNY", status=TRADE_STATES[trade_status],
                            trade_status=trade_status, paid_at=paid if TRADE_STATES[trade_status] == "paid" else None)

    async def close_payment(self, order_id: str) -> CloseOutcome:
        """alipay.trade.close for an order that expired unpaid. A trade the buyer never opened
        does not exist yet ("not_found"): time_expire keeps it from being paid later."""
        try:
            await self._call("alipay.trade.close", {"out_trade_no": order_id})
            return "closed"
        except ResponseNotTrusted:
            raise
        except ProviderError as error:
            if error.code == "ACQ.TRADE_NOT_EXIST":
                return "not_found"
            if error.code != "ACQ.TRADE_STATUS_ERROR":
                raise
        status = await self.query(order_id)  # not closable: paid, or closed already
        if status is not None and status.status == "paid":
            return "already_paid"
        if status is not None and status.status == "cancelled":
            return "closed"
        raise ProviderError("unexpected_answer", f"close refused for a {status.status if status else 'missing'} trade")

    # --- notices --------------------------------------------------------------------------------

    def notice_kind(self, body: bytes, headers: Mapping[str, str]) -> NoticeKind:
        try:
            params = self._form(body)
        except NoticeRejected:
            return "payment"  # verify_notice refuses it
        if params.get("out_biz_no"):
            return "refund"
        if params.get("trade_status") in ("TRADE_CLOSED", "WAIT_BUYER_PAY"):
            return "other"  # an unpaid trade closed (or opened): nothing to store
        return "payment"

    def verify_notice(self, body: bytes, headers: Mapping[str, str]) -> PaymentNotice:
        params = self._verified(body)
        if params.get("trade_status") not in PAID_STATES or params.get("out_biz_no"):
            raise NoticeRejected("malformed")
        order_id, payment_id = params.get("out_trade_no", ""), params.get("trade_no", "")
        try:
            amount_fen = to_fen(params.get("total_amount", ""))
            paid_at = parse_beijing(params.get("gmt_payment") or params.get("notify_time", ""))
        except ValueError:
            raise NoticeRejected("malformed") from None
        if not order_id or not payment_id or amount_fen <= 0:
            raise NoticeRejected("malformed")
        return PaymentNotice(payment_id=payment_id, order_id=order_id, amount_fen=amount_fen, currency="CNY",
                             status="paid", paid_at=paid_at)

    def verify_refund_notice(self, body: bytes, headers: Mapping[str, str]) -> RefundNotice:
        params = self._verified(body)
        refund_id, order_id = params.get("out_biz_no", ""), params.get("out_trade_no", "")
        payment_id = params.get("trade_no", "")
        if not refund_id or not order_id or not payment_id:
            raise NoticeRejected("malformed")
        try:
            refunded_total = to_fen(params.get("refund_fee", ""))
            refunded_at = parse_beijing(params.get("gmt_refund") or params.get("notify_time", ""))
        except ValueError:
            raise NoticeRejected("malformed") from None
        return RefundNotice(refund_id=refund_id, order_id=order_id, payment_id=payment_id, status="succeeded",
                            refunded_total_fen=refunded_total, refunded_at=refunded_at)

    def ack(self, accepted: bool, reason: str = "") -> NoticeAck:
        # Alipay reads only the body: exactly "success" stops it, anything else is sent again.
        if accepted:
            return NoticeAck(status=200, body="success", content_type="text/plain")
        refused = reason in ("bad_signature", "stale", "malformed", "too_large")
        return NoticeAck(status=400 if refused else 500, body="failure", content_type="text/plain")

    def _form(self, body: bytes) -> dict[str, str]:
        try:
            pairs = parse_qsl(body.decode("ascii"), keep_blank_values=True, strict_parsing=True,
                              encoding="utf-8", errors="strict")
        except (UnicodeDecodeError, ValueError):
            raise NoticeRejected("malformed") from None
        params = dict(pairs)
        if len(params) != len(pairs):
            raise NoticeRejected("malformed")  # a parameter twice: which one was signed?
        return params

    def _verified(self, body: bytes) -> dict[str, str]:
        """The notice's parameters, when Alipay signed them for our app, recently enough."""
        params = self._form(body)
        if params.get("sign_type") != "RSA2" or not rsa_verify(
                self._alipay_key, params.get("sign", ""), sign_content(params, leave_out=NOTICE_UNSIGNED)):
            raise NoticeRejected("bad_signature")
        if params.get("app_id") != self.app_id or (self._seller_id and params.get("seller_id") != self._seller_id):
            raise NoticeRejected("malformed")  # signed by Alipay, but for another app or seller
        try:
            sent = parse_beijing(params.get("notify_time", ""))
        except ValueError:
            raise NoticeRejected("malformed") from None
        now = self._clock.now()
        if sent < now - self.notice_max_age or sent > now + FUTURE_SKEW:
            raise NoticeRejected("stale")
        return params

    # --- refunds --------------------------------------------------------------------------------

    async def refund(self, *, order_id: str, refund_id: str, amount_fen: int, total_fen: int,
                     reason: str) -> RefundResult:
        """alipay.trade.refund, idempotent by out_request_no. A repeat answers fund_change "N"
        (no money moved this time); the refund query then says what that refund was."""
        check_refund(refund_id, amount_fen, total_fen)
        biz = {"out_trade_no": order_id, "refund_amount": yuan(amount_fen), "out_request_no": refund_id}
        if reason:
            biz["refund_reason"] = reason[:256]
        try:
            answer = await self._call("alipay.trade.refund", biz)
        except ResponseNotTrusted:
            raise
        except ProviderError as error:
            if error.status == BUSINESS_REFUSAL and error.code != "ACQ.SYSTEM_ERROR":
                raise RefundRefused(error.code, error.message) from None
            raise
        if answer.get("out_trade_no") != order_id:
            raise ProviderError("unexpected_answer", "another trade's refund")
        if answer.get("fund_change") != "Y":
            made = await self.query_refund(order_id=order_id, refund_id=refund_id)
            if made is None:
                return RefundResult(refund_id=refund_id, order_id=order_id, amount_fen=amount_fen,
                                    status="processing", payment_id=answer.get("trade_no"))
            if made.amount_fen != amount_fen:
                raise RefundRefused("refund_id_reused", f"{refund_id} was a refund of {made.amount_fen} fen")
            return made
        refunded_at = answer.get("gmt_refund_pay")
        return RefundResult(
            refund_id=refund_id, order_id=order_id, amount_fen=amount_fen, status="succeeded",
            payment_id=answer.get("trade_no"),
            refunded_at=parse_beijing(refunded_at) if isinstance(refunded_at, str) and refunded_at else None,
        )

    async def query_refund(self, *, order_id: str, refund_id: str) -> RefundResult | None:
        """alipay.trade.fastpay.refund.query: a refund Alipay made, or None (never asked, or failed)."""
        answer = await self._call("alipay.trade.fastpay.refund.query",
                                  {"out_trade_no": order_id, "out_request_no": refund_id,
                                   "query_options": ["gmt_refund_pay"]})
        # A refund Alipay does not know (or has not finished) is answered 10000 without refund_status.
        if answer.get("out_request_no") != refund_id or answer.get("refund_status") != "REFUND_SUCCESS":
            return None
        try:
            amount_fen = to_fen(str(answer.get("refund_amount", "")))
        except ValueError:
            raise ProviderError("unexpected_answer", "refund_amount") from None
        refunded_at = answer.get("gmt_refund_pay")
        return RefundResult(
            refund_id=refund_id, order_id=order_id, amount_fen=amount_fen, status="succeeded",
            payment_id=answer.get("trade_no"),
            refunded_at=parse_beijing(refunded_at) if isinstance(refunded_at, str) and refunded_at else None,
        )

    # --- the wire -------------------------------------------------------------------------------

    async def _call(self, method: str, biz: Mapping[str, Any]) -> dict[str, Any]:
        """POST a signed request; the `<method>_response` object once its signature verifies.
        A refusal raises ProviderError with Alipay's sub_code (or code), status = its code."""
        params = self.signed_params(method, biz)
        try:
            async with self._http.get().post(self._gateway_url, data=params) as resp:
                text = await resp.text(encoding="utf-8")
        except (aiohttp.ClientError, TimeoutError, UnicodeDecodeError) as exc:
            raise ProviderError("unreachable", type(exc).__name__) from None
        key = method.replace(".", "_") + "_response"
        try:
            document = json.loads(text)
        except ValueError:
            raise ProviderError("unexpected_answer", "not JSON") from None
        raw = response_text(text, key) if isinstance(document, dict) else None
        if raw is None:
            error = document.get("error_response", {}) if isinstance(document, dict) else {}
            raise ResponseNotTrusted(f"{error.get('code', '')} {error.get('sub_code', '')}".strip())
        answer = json.loads(raw)
        signature = document.get("sign")
        trusted = isinstance(signature, str) and rsa_verify(self._alipay_key, signature, raw.encode())
        if not isinstance(answer, dict):
            raise ProviderError("unexpected_answer", key)
        code = str(answer.get("code", ""))
        if not trusted:
            # An unsigned refusal (a bad request signature is answered unsigned) is still a
            # refusal; it is never read as "no such trade", and a success is never believed.
            log.warning("alipay.answer_refused method=%s code=%s", method, code)
            raise ResponseNotTrusted(f"{code} {answer.get('sub_code', '')}".strip())
        if code != SUCCESS_CODE:
            message = str(answer.get("sub_msg") or answer.get("msg", ""))
            raise ProviderError(str(answer.get("sub_code") or code), message, status=int(code) if code.isdigit() else 0)
        return answer

    async def close(self) -> None:
        await self._http.close()


def alipay_gateway(
    *,
    app_id: str,
    app_private_key: str,
    alipay_public_key: str,
    clock: Clock,
    gateway_url: str = GATEWAY_URL,
    seller_id: str | None = None,
) -> AlipayGateway:
    """The gateway from the settings' strings (PEM or the bare base64 Alipay's tools give)."""
    return AlipayGateway(app_id=app_id, app_private_key=load_private_key(app_private_key),
                         alipay_public_key=load_public_key(alipay_public_key), clock=clock,
                         gateway_url=gateway_url, seller_id=seller_id)
