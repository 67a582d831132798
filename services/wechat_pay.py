"""WeChat Pay API v3 (微信支付 APIv3) as a web payment gateway, and its refunds.

Three ways to pay one order (`WechatPayRequest.scene`):
- native: the API answers a `code_url` (weixin://wxpay/bizpayurl?pr=...); the page shows it as a
  QR code that the buyer scans with WeChat, and follows the order until the notice arrives;
- h5: for a phone's browser outside WeChat; the API answers an `h5_url` on wx.tenpay.com that
  opens WeChat; it needs the buyer's IP (`scene_info.payer_client_ip`) and `h5_info`;
- jsapi: inside WeChat's own browser; the API answers a `prepay_id`, and the page hands the
  signed parameters (`WechatPaySession.jsapi_params`) to `WeixinJSBridge.invoke('getBrandWCPayRequest')`
  or `wx.chooseWXPay`; it needs the buyer's `openid` under our appid.

Every request carries `Authorization: WECHATPAY2-SHA256-RSA2048 mchid=..,nonce_str=..,
signature=..,timestamp=..,serial_no=..`, an RSA-SHA256 signature with the merchant key over
"METHOD\\nURL\\nTIMESTAMP\\nNONCE\\nBODY\\n". Every answer and every notice is verified against
the WeChat Pay public key (or platform certificate) named by `Wechatpay-Serial`, over
"TIMESTAMP\\nNONCE\\nBODY\\n", and refused when its timestamp is more than five minutes off.
A notice's `resource` is AES-256-GCM ciphertext under the APIv3 key (its nonce and
associated_data given beside it): it decrypts only if nobody changed it.

Crypto comes from `cryptography` directly, not from the wechatpayv3 SDK: its default client is
synchronous (requests) and would block the event loop, its async extra brings a second HTTP stack
(httpx), and the protocol needs only RSA PKCS#1 v1.5 with SHA-256, AES-256-GCM and base64, which
`cryptography` provides typed and maintained (docs/payments.md, "Why no SDK"). HTTP is aiohttp,
like the rest of the bot.
"""
from __future__ import annotations

import base64
import binascii
import json
import logging
import secrets
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, Literal
from urllib.parse import quote, urlencode

import aiohttp
from cryptography import x509
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from yarl import URL

from services.clock import Clock
from services.payment_gateway import (
    LazySession,
    NoticeAck,
    NoticeProblem,
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
    RefundState,
    ResponseNotTrusted,
    check_refund,
    header,
)
from services.wechat_oauth import WechatOAuth

log = logging.getLogger(__name__)

API_BASE = "https://api.mch.weixin.qq.com"
H5_CASHIER_ORIGIN = "https://wx.tenpay.com"
AUTH_SCHEMA = "WECHATPAY2-SHA256-RSA2048"
MAX_SKEW_SECONDS = 300  # WeChat Pay's advice: refuse answers and notices more than 5 minutes off
BEIJING = timezone(timedelta(hours=8))
DESCRIPTION_MAX = 127  # characters WeChat Pay takes in `description`
REFUND_REASON_MAX = 80

WechatScene = Literal["native", "h5", "jsapi"]
CloseOutcome = Literal["closed", "already_paid", "not_found"]

# trade_state -> the gateway interface's three states. REFUND: it was paid, and a refund followed.
TRADE_STATES: dict[str, Literal["created", "paid", "cancelled"]] = {
    "SUCCESS": "paid", "REFUND": "paid",
    "NOTPAY": "created", "USERPAYING": "created", "PAYERROR": "created",
    "CLOSED": "cancelled", "REVOKED": "cancelled",
}
REFUND_STATES: dict[str, RefundState] = {
    "SUCCESS": "succeeded", "PROCESSING": "processing", "CLOSED": "closed", "ABNORMAL": "abnormal",
}
# Answers to a refund that mean "not this refund, ever" rather than "try again later".
REFUND_REFUSALS = {"INVALID_REQUEST", "PARAM_ERROR", "RESOURCE_NOT_EXISTS", "ORDER_NOT_EXIST", "NO_AUTH"}


class WechatPayRequest(PaymentRequest):
    """A payment request with what WeChat Pay needs beyond the common fields."""

    scene: WechatScene = "native"
    client_ip: str | None = None  # h5: the buyer's IP as our web app saw it
    h5_type: Literal["Wap", "iOS", "Android"] = "Wap"
    openid: str | None = None  # jsapi: the buyer's openid under our appid (from WeChat's OAuth)
    expires_at: datetime | None = None  # time_expire: no payment after this (the order's expiry)


class WechatPaySession(PaymentSession):
    """`pay_url` is the code_url (native), the h5_url (h5), or empty (jsapi: use jsapi_params).
    `payment_id` is our out_trade_no: WeChat Pay names the payment (transaction_id) once paid."""

    scene: WechatScene
    code_url: str | None = None
    h5_url: str | None = None
    prepay_id: str | None = None
    jsapi_params: dict[str, str] | None = None


class WechatPayStatus(PaymentStatus):
    trade_state: str  # WeChat Pay's own word, for a person reading a reconciliation


# --- keys ----------------------------------------------------------------------------------------


def load_private_key(pem: str | bytes) -> RSAPrivateKey:
    """The merchant's API private key (apiclient_key.pem)."""
    key = serialization.load_pem_private_key(pem.encode() if isinstance(pem, str) else pem, password=None)
    if not isinstance(key, RSAPrivateKey):
        raise ValueError("the merchant key must be an RSA private key")
    return key


def load_public_key(pem: str | bytes) -> RSAPublicKey:
    """A WeChat Pay public key (pub_key.pem) or a platform certificate (wechatpay_*.pem)."""
    data = pem.encode() if isinstance(pem, str) else pem
    key: object = (x509.load_pem_x509_certificate(data).public_key() if b"BEGIN CERTIFICATE" in data
                   else serialization.load_pem_public_key(data))
    if not isinstance(key, RSAPublicKey):
        raise ValueError("the WeChat Pay key must be an RSA public key")
    return key


def rsa_sign(key: RSAPrivateKey, message: bytes) -> str:
    return base64.b64encode(key.sign(message, padding.PKCS1v15(), hashes.SHA256())).decode()


def rsa_verify(key: RSAPublicKey, signature: str, message: bytes) -> bool:
    try:
        key.verify(base64.b64decode(signature, validate=True), message, padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, binascii.Error, ValueError):
        return False
    return True


def request_message(method: str, url_path: str, timestamp: str, nonce: str, body: str) -> bytes:
    """What the merchant signs: the URL is the path with its query, as sent."""
    return f"{method}\n{url_path}\n{timestamp}\n{nonce}\n{body}\n".encode()


def response_message(timestamp: str, nonce: str, body: bytes) -> bytes:
    """What WeChat Pay signs in an answer or a notice: the body byte for byte."""
    return f"{timestamp}\n{nonce}\n".encode() + body + b"\n"


def parse_authorization(value: str) -> dict[str, str]:
    """The fields of a WECHATPAY2-SHA256-RSA2048 Authorization header (empty if not one)."""
    schema, _, rest = value.partition(" ")
    if schema != AUTH_SCHEMA:
        return {}
    fields: dict[str, str] = {}
    for part in rest.split(","):
        name, sep, raw = part.strip().partition("=")
        if not sep or len(raw) < 2 or raw[0] != '"' or raw[-1] != '"':
            return {}
        fields[name] = raw[1:-1]
    return fields


def rfc3339(moment: datetime) -> str:
    """WeChat Pay's time format, in Beijing time: 2026-01-05T10:00:00+08:00."""
    return moment.astimezone(BEIJING).isoformat(timespec="seconds")


# --- the gateway ---------------------------------------------------------------------------------


class WechatPayGateway:
    """WeChat Pay v3 behind `PaymentGateway` and `RefundingGateway`. Keys are given parsed;
    nothing here reads a file or the environment."""

    name = "wechat"

    def __init__(
        self,
        *,
        mchid: str,
        appid: str,
        merchant_serial: str,
        merchant_key: RSAPrivateKey,
        apiv3_key: bytes,
        platform_keys: Mapping[str, RSAPublicKey],
        clock: Clock,
        api_base: str = API_BASE,
        refund_notify_url: str | None = None,
        payment_ttl: timedelta = timedelta(minutes=30),
        max_skew_seconds: int = MAX_SKEW_SECONDS,
        cashier_origins: tuple[str, ...] = (H5_CASHIER_ORIGIN,),
        timeout_seconds: float = 10.0,
        oauth: WechatOAuth | None = None,
    ) -> None:
        if len(apiv3_key) != 32:
            raise ValueError("the APIv3 key is 32 bytes")
        if not platform_keys:
            raise ValueError("at least one WeChat Pay public key (or platform certificate) is needed")
        self.mchid = mchid
        self.appid = appid
        self._serial = merchant_serial
        self._key = merchant_key
        self._aead = AESGCM(apiv3_key)
        self._platform_keys = dict(platform_keys)
        self._clock = clock
        self._base = api_base.rstrip("/")
        self._refund_notify_url = refund_notify_url
        self._payment_ttl = payment_ttl
        self.max_skew_seconds = max_skew_seconds
        self._cashier_origins = list(cashier_origins)
        self._http = LazySession(timeout_seconds)
        # JSAPI inside WeChat's browser: the buyer's openid comes from WeChat's OAuth (None: off).
        self.oauth = oauth
        if oauth is not None and oauth.appid != appid:
            raise ValueError("JSAPI's openid must be under the appid the payments are made with")

    @property
    def form_action_origins(self) -> list[str]:
        # h5 sends the buyer to wx.tenpay.com; JSAPI to WeChat's OAuth page first.
        return [*self._cashier_origins, *([self.oauth.origin] if self.oauth is not None else [])]

    # --- paying ---------------------------------------------------------------------------------

    async def create_payment(self, request: PaymentRequest) -> WechatPaySession:
        """Open the payment in the request's scene (a plain PaymentRequest: native). Asking again
        for the same order with the same fields gets the same code_url or prepay_id from WeChat
        Pay; another amount or scene for the same out_trade_no is refused by it."""
        wr = request if isinstance(request, WechatPayRequest) else WechatPayRequest(**request.model_dump())
        if wr.currency != "CNY":
            raise ValueError("WeChat Pay takes CNY only")
        if wr.amount_fen <= 0:
            raise ValueError("the amount must be positive")
        expires = wr.expires_at or self._clock.now() + self._payment_ttl
        body: dict[str, Any] = {
            "appid": self.appid,
            "mchid": self.mchid,
            "description": wr.description[:DESCRIPTION_MAX],
            "out_trade_no": wr.order_id,
            "time_expire": rfc3339(expires),
            "notify_url": wr.notify_url,
            "amount": {"total": wr.amount_fen, "currency": "CNY"},
        }
        if wr.scene == "h5":
            if not wr.client_ip:
                raise ValueError("h5 needs the buyer's IP (client_ip)")
            body["scene_info"] = {"payer_client_ip": wr.client_ip, "h5_info": {"type": wr.h5_type}}
        elif wr.scene == "jsapi":
            if not wr.openid:
                raise ValueError("jsapi needs the buyer's openid")
            body["payer"] = {"openid": wr.openid}
        _, answer = await self._call("POST", f"/v3/pay/transactions/{wr.scene}", body)
        if wr.scene == "native":
            code_url = _text_field(answer, "code_url")
            return WechatPaySession(payment_id=wr.order_id, pay_url=code_url, scene="native", code_url=code_url)
        if wr.scene == "h5":
            h5_url = _text_field(answer, "h5_url")
            # WeChat sends the buyer back to redirect_url once they leave its cashier page.
            back = h5_url + ("&" if "?" in h5_url else "?") + urlencode({"redirect_url": wr.return_url})
            return WechatPaySession(payment_id=wr.order_id, pay_url=back, scene="h5", h5_url=h5_url)
        prepay_id = _text_field(answer, "prepay_id")
        return WechatPaySession(payment_id=wr.order_id, pay_url="", scene="jsapi", prepay_id=prepay_id,
                                jsapi_params=self.jsapi_params(prepay_id))

    def jsapi_params(self, prepay_id: str) -> dict[str, str]:
        """What WeixinJSBridge's getBrandWCPayRequest (or wx.chooseWXPay) takes: paySign is the
        merchant's RSA signature over appId, timeStamp, nonceStr and package."""
        timestamp, nonce = str(int(self._clock.now().timestamp())), secrets.token_hex(16)
        package = f"prepay_id={prepay_id}"
        pay_sign = rsa_sign(self._key, f"{self.appid}\n{timestamp}\n{nonce}\n{package}\n".encode())
        return {"appId": self.appid, "timeStamp": timestamp, "nonceStr": nonce, "package": package,
                "signType": "RSA", "paySign": pay_sign}

    async def query(self, order_id: str) -> WechatPayStatus | None:
        path = f"/v3/pay/transactions/out-trade-no/{quote(order_id, safe='')}?mchid={quote(self.mchid, safe='')}"
        try:
            _, answer = await self._call("GET", path)
        except ProviderError as error:
            if error.code == "ORDER_NOT_EXIST" and not isinstance(error, ResponseNotTrusted):
                return None
            raise
        if answer.get("mchid") != self.mchid or answer.get("out_trade_no") != order_id:
            raise ProviderError("unexpected_answer", "another merchant's or another order's transaction")
        trade_state = str(answer.get("trade_state", ""))
        if trade_state not in TRADE_STATES:
            raise ProviderError("unexpected_answer", f"trade_state {trade_state!r}")
        amount = answer.get("amount") or {}
        total, currency = amount.get("total"), amount.get("currency", "CNY")
        if not isinstance(total, int) or isinstance(total, bool) or not isinstance(currency, str):
            raise ProviderError("unexpected_answer", "amount")
        success_time = answer.get("success_time")
        return WechatPayStatus(
            payment_id=str(answer.get("transaction_id") or order_id), order_id=order_id, amount_fen=total,
            currency=currency, status=TRADE_STATES[trade_state], trade_state=trade_state,
            paid_at=_time(success_time) if isinstance(success_time, str) and success_time else None,
        )

    async def close_payment(self, order_id: str) -> CloseOutcome:
        """关闭订单 for an order that expired unpaid, so it cannot be paid any more. When WeChat
        Pay will not close it, its state says why (paid meanwhile: keep the payment)."""
        try:
            await self._call("POST", f"/v3/pay/transactions/out-trade-no/{quote(order_id, safe='')}/close",
                             {"mchid": self.mchid})
            return "closed"
        except ResponseNotTrusted:
            raise
        except ProviderError as error:
            if error.status < 400 or error.status >= 500:
                raise
            status = await self.query(order_id)
            if status is None:
                return "not_found"
            if status.status == "paid":
                return "already_paid"
            if status.status == "cancelled":
                return "closed"
            raise

    # --- notices --------------------------------------------------------------------------------

    def notice_kind(self, body: bytes, headers: Mapping[str, str]) -> NoticeKind:
        try:
            event_type = json.loads(body).get("event_type", "")
        except (ValueError, AttributeError):
            return "payment"  # verify_notice refuses it
        return "refund" if isinstance(event_type, str) and event_type.startswith("REFUND.") else "payment"

    def verify_notice(self, body: bytes, headers: Mapping[str, str]) -> PaymentNotice:
        """TRANSACTION.SUCCESS, signed by WeChat Pay, fresh, for us, decrypted: the payment."""
        event, paid = self._open_notice(body, headers, "transaction")
        if event.get("event_type") != "TRANSACTION.SUCCESS" or paid.get("trade_state") != "SUCCESS":
            raise NoticeRejected("malformed")
        if paid.get("mchid") != self.mchid or paid.get("appid") != self.appid:
            raise NoticeRejected("malformed")  # another merchant's payment is not ours to apply
        amount = paid.get("amount")
        order_id, payment_id = paid.get("out_trade_no"), paid.get("transaction_id")
        if not isinstance(amount, dict) or not isinstance(order_id, str) or not isinstance(payment_id, str):
            raise NoticeRejected("malformed")
        total, currency = amount.get("total"), amount.get("currency")
        if not isinstance(total, int) or not _positive_int(total) or not isinstance(currency, str) \
                or not order_id or not payment_id:
            raise NoticeRejected("malformed")
        return PaymentNotice(payment_id=payment_id, order_id=order_id, amount_fen=total, currency=currency,
                             status="paid", paid_at=_notice_time(paid.get("success_time")))

    def verify_refund_notice(self, body: bytes, headers: Mapping[str, str]) -> RefundNotice:
        """REFUND.SUCCESS / REFUND.ABNORMAL / REFUND.CLOSED, verified and decrypted."""
        event, refund = self._open_notice(body, headers, "refund")
        status = REFUND_STATES.get(str(refund.get("refund_status", "")))
        if status is None or event.get("event_type") != f"REFUND.{refund.get('refund_status')}":
            raise NoticeRejected("malformed")
        if refund.get("mchid") != self.mchid:
            raise NoticeRejected("malformed")
        amount = refund.get("amount")
        fields = [refund.get(k) for k in ("out_refund_no", "out_trade_no", "transaction_id", "refund_id")]
        if not isinstance(amount, dict) or not all(isinstance(f, str) and f for f in fields):
            raise NoticeRejected("malformed")
        if not _positive_int(amount.get("refund")):
            raise NoticeRejected("malformed")
        success_time = refund.get("success_time")
        return RefundNotice(
            refund_id=str(fields[0]), order_id=str(fields[1]), payment_id=str(fields[2]),
            provider_refund_id=str(fields[3]), status=status, amount_fen=amount["refund"],
            refunded_at=_notice_time(success_time) if status == "succeeded" else None,
        )

    def ack(self, accepted: bool, reason: str = "") -> NoticeAck:
        # 2xx: stop sending. Anything else with {"code":"FAIL"} makes WeChat Pay send it again.
        if accepted:
            return NoticeAck(status=200, body=json.dumps({"code": "SUCCESS", "message": "成功"}))
        refused = reason in ("bad_signature", "stale", "malformed", "too_large")
        return NoticeAck(status=400 if refused else 500,
                         body=json.dumps({"code": "FAIL", "message": reason or "失败"}))

    def _open_notice(self, body: bytes, headers: Mapping[str, str],
                     original_type: str) -> tuple[dict[str, Any], dict[str, Any]]:
        problem = self._signature_problem(body, headers)
        if problem is not None:
            raise NoticeRejected(problem)
        try:
            event = json.loads(body)
            resource = event["resource"]
            if (event.get("resource_type") != "encrypt-resource" or resource.get("algorithm") != "AEAD_AES_256_GCM"
                    or resource.get("original_type") != original_type):
                raise NoticeRejected("malformed")
            plain = self._aead.decrypt(str(resource["nonce"]).encode(), base64.b64decode(resource["ciphertext"]),
                                       str(resource.get("associated_data") or "").encode())
            content = json.loads(plain)
        except InvalidTag:
            raise NoticeRejected("bad_signature") from None  # changed after WeChat Pay encrypted it
        except (ValueError, KeyError, TypeError, AttributeError, binascii.Error):
            raise NoticeRejected("malformed") from None
        if not isinstance(event, dict) or not isinstance(content, dict):
            raise NoticeRejected("malformed")
        return event, content

    def _signature_problem(self, body: bytes, headers: Mapping[str, str]) -> NoticeProblem | None:
        """None when WeChat Pay signed exactly this body with a key we trust, recently."""
        timestamp = header(headers, "Wechatpay-Timestamp")
        nonce = header(headers, "Wechatpay-Nonce")
        signature = header(headers, "Wechatpay-Signature")
        key = self._platform_keys.get(header(headers, "Wechatpay-Serial"))
        if key is None or not timestamp.isdigit() or not nonce or not signature:
            return "bad_signature"
        if not rsa_verify(key, signature, response_message(timestamp, nonce, body)):
            return "bad_signature"
        if abs(self._clock.now().timestamp() - int(timestamp)) > self.max_skew_seconds:
            return "stale"
        return None

    # --- refunds --------------------------------------------------------------------------------

    async def refund(self, *, order_id: str, refund_id: str, amount_fen: int, total_fen: int,
                     reason: str) -> RefundResult:
        """申请退款; the same out_refund_no again returns the refund already made."""
        check_refund(refund_id, amount_fen, total_fen)
        body: dict[str, Any] = {
            "out_trade_no": order_id,
            "out_refund_no": refund_id,
            "reason": reason[:REFUND_REASON_MAX],
            "amount": {"refund": amount_fen, "total": total_fen, "currency": "CNY"},
        }
        if not reason:
            del body["reason"]
        if self._refund_notify_url:
            body["notify_url"] = self._refund_notify_url
        try:
            _, answer = await self._call("POST", "/v3/refund/domestic/refunds", body)
        except ResponseNotTrusted:
            raise
        except ProviderError as error:
            if error.code in REFUND_REFUSALS and 400 <= error.status < 500:
                raise RefundRefused(error.code, error.message, status=error.status) from None
            raise
        result = self._refund_result(answer, order_id)
        if result.refund_id != refund_id:
            raise ProviderError("unexpected_answer", "another refund's answer")
        if result.amount_fen != amount_fen:
            raise RefundRefused("refund_id_reused", f"{refund_id} was a refund of {result.amount_fen} fen")
        return result

    async def query_refund(self, *, order_id: str, refund_id: str) -> RefundResult | None:
        try:
            _, answer = await self._call("GET", f"/v3/refund/domestic/refunds/{quote(refund_id, safe='')}")
        except ProviderError as error:
            if error.code == "RESOURCE_NOT_EXISTS" and not isinstance(error, ResponseNotTrusted):
                return None
            raise
        result = self._refund_result(answer, order_id)
        if result.refund_id != refund_id:
            raise ProviderError("unexpected_answer", "another refund's answer")
        return result

    def _refund_result(self, answer: dict[str, Any], order_id: str) -> RefundResult:
        status = REFUND_STATES.get(str(answer.get("status", "")))
        amount = answer.get("amount") or {}
        if status is None or not _positive_int(amount.get("refund")) or answer.get("out_trade_no") != order_id:
            raise ProviderError("unexpected_answer", "refund")
        success_time = answer.get("success_time")
        return RefundResult(
            refund_id=str(answer.get("out_refund_no", "")), order_id=order_id, amount_fen=amount["refund"],
            status=status, payment_id=answer.get("transaction_id"), provider_refund_id=answer.get("refund_id"),
            refunded_at=_time(success_time) if isinstance(success_time, str) and success_time else None,
        )

    # --- the wire -------------------------------------------------------------------------------

    def authorization(self, method: str, url_path: str, body: str) -> str:
        timestamp, nonce = str(int(self._clock.now().timestamp())), secrets.token_hex(16)
        signature = rsa_sign(self._key, request_message(method, url_path, timestamp, nonce, body))
        return (f'{AUTH_SCHEMA} mchid="{self.mchid}",nonce_str="{nonce}",signature="{signature}",'
                f'timestamp="{timestamp}",serial_no="{self._serial}"')

    async def _call(self, method: str, url_path: str,
                    payload: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
        """Send a signed request; the answer only when WeChat Pay signed it. A refusal raises
        ProviderError with WeChat Pay's code."""
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")) if payload is not None else ""
        headers = {"Authorization": self.authorization(method, url_path, body), "Accept": "application/json",
                   "User-Agent": "esign-purchase-bot"}
        if payload is not None:
            headers["Content-Type"] = "application/json"
        session = self._http.get()
        try:
            # encoded=True: the path goes out exactly as signed
            async with session.request(method, URL(self._base + url_path, encoded=True),
                                       data=body.encode() if payload is not None else None,
                                       headers=headers) as resp:
                raw, status, answer_headers = await resp.read(), resp.status, resp.headers
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ProviderError("unreachable", type(exc).__name__) from None
        signed = bool(header(answer_headers, "Wechatpay-Signature"))
        problem = self._signature_problem(raw, answer_headers) if signed else "bad_signature"
        if status < 300 and problem is not None:
            log.warning("wechat_pay.answer_refused path=%s problem=%s", url_path.split("?")[0], problem)
            raise ResponseNotTrusted(problem)
        try:
            answer = json.loads(raw) if raw else {}
        except ValueError:
            answer = {}
        if not isinstance(answer, dict):
            answer = {}
        if status >= 300:
            code, message = str(answer.get("code") or f"http_{status}"), str(answer.get("message") or "")
            if problem is not None:
                # An unsigned refusal is still a refusal; it is never read as "no such order".
                raise ResponseNotTrusted(f"{status} {code}")
            raise ProviderError(code, message, status=status)
        return status, answer

    async def close(self) -> None:
        await self._http.close()
        if self.oauth is not None:
            await self.oauth.close()


def wechat_pay_gateway(
    *,
    mchid: str,
    appid: str,
    merchant_serial: str,
    merchant_private_key_pem: str,
    apiv3_key: str,
    platform_public_keys: Mapping[str, str],
    clock: Clock,
    api_base: str = API_BASE,
    refund_notify_url: str | None = None,
    cashier_origins: tuple[str, ...] = (H5_CASHIER_ORIGIN,),
    oauth: WechatOAuth | None = None,
) -> WechatPayGateway:
    """The gateway from the settings' strings: the merchant key's PEM, the APIv3 key, and the
    WeChat Pay public key(s) or platform certificate(s) in PEM, by their serial (PUB_KEY_ID_...)."""
    return WechatPayGateway(
        mchid=mchid, appid=appid, merchant_serial=merchant_serial,
        merchant_key=load_private_key(merchant_private_key_pem), apiv3_key=apiv3_key.encode(),
        platform_keys={serial: load_public_key(pem) for serial, pem in platform_public_keys.items()},
        clock=clock, api_base=api_base, refund_notify_url=refund_notify_url, cashier_origins=cashier_origins,
        oauth=oauth,
    )


def _text_field(answer: dict[str, Any], name: str) -> str:
    value = answer.get(name)
    if not isinstance(value, str) or not value:
        raise ProviderError("unexpected_answer", f"no {name}")
    return value


def _positive_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _time(value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ProviderError("unexpected_answer", f"time {value!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=BEIJING)


def _notice_time(value: object) -> datetime:
    if not isinstance(value, str):
        raise NoticeRejected("malformed")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise NoticeRejected("malformed") from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=BEIJING)).astimezone(UTC)
