"""A local WeChat Pay API v3 for tests and the playground: it speaks the documented protocol.

- Merchants are registered with their mchid, appid, API key serial and public key; every
  request's `Authorization: WECHATPAY2-SHA256-RSA2048 ...` is verified (signature, serial,
  timestamp within five minutes), and refused with 401 {"code":"SIGN_ERROR",...} otherwise.
- The fake's own key pair (the "WeChat Pay public key", serial PUB_KEY_ID_...) and APIv3 key are
  generated at start; every answer is signed (Wechatpay-Signature/-Timestamp/-Nonce/-Serial).
- Native, H5 and JSAPI orders, query by out_trade_no, close, refunds (idempotent by
  out_refund_no, partial, never more than was paid) and refund query, kept in memory.
- `pay(out_trade_no)` is the buyer scanning the code_url, finishing the H5 page or the JSAPI
  sheet: the transaction succeeds and its TRANSACTION.SUCCESS notice, the resource encrypted
  with AES-256-GCM under the APIv3 key, is posted to notify_url, again on WeChat Pay's schedule
  (15s, 15s, 30s, 3m, 10m, 20m, 30m, 30m, 30m, 60m, 3h, 3h, 3h, 6h, 6h) until answered 2xx.
  Refunds finish after `refund_delay` seconds (and once `refund_gate` is set, when a test sets
  one) and post REFUND.SUCCESS to their notify_url.
- WeChat's web authorisation (网页授权, snsapi_base) for JSAPI: `/connect/oauth2/authorize`
  sends the browser back to redirect_uri with a code (and the state as given) for the WeChat
  user `oauth_openid`; `/sns/oauth2/access_token` exchanges a code once, within five minutes,
  for the openid, given the app's AppSecret ({"errcode": ...} with HTTP 200 otherwise).
  `pay_jsapi(params, openid)` is WeChat's sheet: it checks paySign with the merchant's key and
  that the payer is the openid the payment was made for, then pays.
- Test hooks: `tamper_answers` changes answers after signing them; `answer_key` signs them with
  another key; `notice_for`/`signed_headers`/`encrypt_resource` build notices to forge from.
"""
from __future__ import annotations

import asyncio
import base64
import json
import re
import secrets
import string
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from esign_devkit.testing.fake_provider import LocalServer, NoticeSender, private_pem, public_pem
from services.clock import Clock, SystemClock
from services.wechat_pay import (
    MAX_SKEW_SECONDS,
    parse_authorization,
    request_message,
    response_message,
    rfc3339,
    rsa_sign,
    rsa_verify,
)

WECHAT_RETRY_SCHEDULE: tuple[float, ...] = (15, 15, 30, 180, 600, 1200, 1800, 1800, 1800, 3600,
                                            10800, 10800, 10800, 21600, 21600)
OUT_TRADE_NO = re.compile(r"^[0-9A-Za-z_\-|*]{6,32}$")
OAUTH_CODE_SECONDS = 300  # WeChat's OAuth code: once, within five minutes
OAUTH_STATE = re.compile(r"^[A-Za-z0-9]{0,128}$")
TRADE_TYPES = {"native": "NATIVE", "h5": "MWEB", "jsapi": "JSAPI"}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
ApiHandler = Callable[["web.Request", "Merchant", str], Awaitable[web.Response]]


def new_rsa_key() -> RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@dataclass
class Merchant:
    mchid: str
    appid: str
    serial: str
    public_key: RSAPublicKey


@dataclass
class FakeRefund:
    mchid: str
    out_refund_no: str
    refund_id: str
    out_trade_no: str
    transaction_id: str
    refund: int
    total: int
    reason: str
    notify_url: str | None
    create_time: datetime
    status: str = "PROCESSING"
    success_time: datetime | None = None


@dataclass
class FakeTransaction:
    mchid: str
    appid: str
    out_trade_no: str
    trade_type: str
    description: str
    total: int
    currency: str
    notify_url: str
    time_expire: datetime | None
    prepay_id: str
    openid: str | None = None
    client_ip: str | None = None
    trade_state: str = "NOTPAY"
    transaction_id: str | None = None
    success_time: datetime | None = None
    refunds: list[FakeRefund] = field(default_factory=list)

    @property
    def refunded(self) -> int:
        return sum(r.refund for r in self.refunds if r.status in ("PROCESSING", "SUCCESS"))


class FakeWechatPay:
    def __init__(self, *, clock: Clock | None = None, retry_schedule: Sequence[float] = WECHAT_RETRY_SCHEDULE,
                 refund_delay: float = 0.0) -> None:
        self.clock = clock or SystemClock()
        self.platform_key = new_rsa_key()
        self.platform_serial = "PUB_KEY_ID_" + "".join(secrets.choice(string.digits) for _ in range(28))
        self.apiv3_key = secrets.token_hex(16).encode()  # 32 bytes, as the merchant platform sets it
        self.merchants: dict[str, Merchant] = {}
        self.transactions: dict[tuple[str, str], FakeTransaction] = {}  # (mchid, out_trade_no)
        self.refunds: dict[tuple[str, str], FakeRefund] = {}  # (mchid, out_refund_no)
        self.requests: list[tuple[str, str, int]] = []  # method, path, status: what was asked
        self.refund_delay = refund_delay
        self.refund_gate: asyncio.Event | None = None  # when set by a test, refunds finish once it is set
        self.tamper_answers = False
        self.answer_key: RSAPrivateKey | None = None  # sign answers with another key
        self.notices = NoticeSender(retry_schedule, lambda status, _answer: 200 <= status < 300)
        self._tasks: set[asyncio.Task[None]] = set()
        self._seq = 0
        self.app_secrets: dict[str, str] = {}  # appid -> AppSecret (the 服务号's)
        self.oauth_openid = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"  # the WeChat user whose browser authorises
        self.oauth_codes: dict[str, OAuthCode] = {}
        self.oauth_requests: list[tuple[str, str]] = []  # (path, outcome): authorisations and exchanges
        app = web.Application()
        app.router.add_post("/v3/pay/transactions/{scene}", self._api(self._create))
        app.router.add_get("/v3/pay/transactions/out-trade-no/{out_trade_no}", self._api(self._query))
        app.router.add_post("/v3/pay/transactions/out-trade-no/{out_trade_no}/close", self._api(self._close))
        app.router.add_post("/v3/refund/domestic/refunds", self._api(self._refund))
        app.router.add_get("/v3/refund/domestic/refunds/{out_refund_no}", self._api(self._query_refund))
        # The buyer's side: the H5 cashier page, and paying through it (the playground's browser).
        app.router.add_get("/cgi-bin/mmpayweb-bin/checkmweb", self._h5_page)
        app.router.add_post("/fake/pay/{mchid}/{out_trade_no}", self._pay_form)
        # WeChat's OAuth (open.weixin.qq.com and api.weixin.qq.com in real life).
        app.router.add_get("/connect/oauth2/authorize", self._oauth_authorize)
        app.router.add_get("/sns/oauth2/access_token", self._oauth_access_token)
        self._server = LocalServer(app)
        self.base_url = ""

    @property
    def platform_public_key(self) -> RSAPublicKey:
        return self.platform_key.public_key()

    async def start(self) -> str:
        self.base_url = await self._server.start()
        return self.base_url

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*list(self._tasks), return_exceptions=True)
        await self.notices.close()
        await self._server.stop()

    async def __aenter__(self) -> FakeWechatPay:
        await self.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    def add_merchant(self, *, mchid: str, appid: str, serial: str, public_key: RSAPublicKey) -> Merchant:
        merchant = Merchant(mchid, appid, serial, public_key)
        self.merchants[mchid] = merchant
        return merchant

    def merchant_settings(self, *, mchid: str = "1900000109", appid: str = "wxd678efh567hg6787",
                          serial: str = "5157F09EFDC096DE15EBE81A47057A7232F1B8E1") -> dict[str, Any]:
        """A merchant registered here with a key made now, and the bot's settings (WECHAT_*) to
        talk to this fake as to WeChat Pay. Call it once the fake has started."""
        key = new_rsa_key()
        self.add_merchant(mchid=mchid, appid=appid, serial=serial, public_key=key.public_key())
        self.app_secrets[appid] = secrets.token_hex(16)
        return {"wechat_mchid": mchid, "wechat_appid": appid, "wechat_merchant_serial": serial,
                "wechat_merchant_private_key": private_pem(key), "wechat_apiv3_key": self.apiv3_key.decode(),
                "wechat_platform_public_keys": {self.platform_serial: public_pem(self.platform_public_key)},
                "wechat_api_base": self.base_url, "wechat_app_secret": self.app_secrets[appid],
                "wechat_oauth_base": self.base_url, "wechat_sns_api_base": self.base_url}

    def by_code_url(self, code_url: str) -> FakeTransaction | None:
        """The transaction a Native QR code stands for: what scanning it finds."""
        return next((t for t in self.transactions.values() if code_url.endswith(t.prepay_id[-10:])), None)

    async def scan(self, code_url: str) -> FakeTransaction:
        """The buyer scans the QR code with WeChat and pays."""
        tx = self.by_code_url(code_url)
        if tx is None or tx.trade_type != "NATIVE":
            raise LookupError(f"no Native transaction for {code_url}")
        return await self.pay(tx.mchid, tx.out_trade_no)

    # --- the buyer -------------------------------------------------------------------------------

    def transaction(self, mchid: str, out_trade_no: str) -> FakeTransaction | None:
        return self.transactions.get((mchid, out_trade_no))

    async def pay(self, mchid: str, out_trade_no: str, *,
                  openid: str = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o") -> FakeTransaction:
        """The buyer pays: the transaction succeeds once and its notice goes out (paying again
        only sends the notice again)."""
        tx = self.transactions.get((mchid, out_trade_no))
        if tx is None:
            raise LookupError(f"no transaction {out_trade_no}")
        if tx.trade_state == "NOTPAY":
            if tx.time_expire is not None and self.clock.now() > tx.time_expire:
                raise ValueError("the order expired (time_expire)")
            self._seq += 1
            tx.trade_state = "SUCCESS"
            tx.transaction_id = f"4200{self.clock.now():%Y%m%d}{self._seq:018d}"[:32]
            tx.success_time = self.clock.now()
            tx.openid = tx.openid or openid
        elif tx.trade_state not in ("SUCCESS", "REFUND"):
            raise ValueError(f"the order is {tx.trade_state}")
        self.notices.send(tx.notify_url, lambda: self.notice_for(tx))
        return tx

    async def pay_jsapi(self, params: dict[str, str], *, openid: str | None = None) -> FakeTransaction:
        """WeChat's payment sheet (getBrandWCPayRequest) with the page's parameters: paySign must
        be the merchant's signature over appId, timeStamp, nonceStr and package, and the buyer
        the openid the payment was made for."""
        prepay_id = params.get("package", "").removeprefix("prepay_id=")
        tx = next((t for t in self.transactions.values() if t.prepay_id == prepay_id), None)
        if tx is None or tx.trade_type != "JSAPI":
            raise LookupError(f"no JSAPI transaction for {params.get('package')}")
        merchant = self.merchants[tx.mchid]
        message = "".join(f"{params.get(k, '')}\n" for k in ("appId", "timeStamp", "nonceStr", "package")).encode()
        if (params.get("appId") != tx.appid or params.get("signType") != "RSA"
                or not rsa_verify(merchant.public_key, params.get("paySign", ""), message)):
            raise ValueError("支付验证签名失败")
        if (openid or self.oauth_openid) != tx.openid:
            raise ValueError("该订单不属于当前微信用户")
        return await self.pay(tx.mchid, tx.out_trade_no, openid=tx.openid)

    # --- notices ---------------------------------------------------------------------------------

    def transaction_resource(self, tx: FakeTransaction) -> dict[str, Any]:
        return {
            "mchid": tx.mchid, "appid": tx.appid, "out_trade_no": tx.out_trade_no,
            "transaction_id": tx.transaction_id, "trade_type": tx.trade_type, "trade_state": "SUCCESS",
            "trade_state_desc": "支付成功", "bank_type": "OTHERS", "attach": "",
            "success_time": rfc3339(tx.success_time or self.clock.now()),
            "payer": {"openid": tx.openid or ""},
            "amount": {"total": tx.total, "payer_total": tx.total, "currency": tx.currency, "payer_currency": "CNY"},
        }

    def refund_resource(self, refund: FakeRefund) -> dict[str, Any]:
        tx = self.transactions[(refund.mchid, refund.out_trade_no)]
        content: dict[str, Any] = {
            "mchid": tx.mchid, "out_trade_no": refund.out_trade_no, "transaction_id": refund.transaction_id,
            "out_refund_no": refund.out_refund_no, "refund_id": refund.refund_id,
            "refund_status": refund.status, "user_received_account": "支付用户零钱",
            "amount": {"total": refund.total, "refund": refund.refund, "payer_total": refund.total,
                       "payer_refund": refund.refund},
        }
        if refund.success_time is not None:
            content["success_time"] = rfc3339(refund.success_time)
        return content

    def notice_body(self, event_type: str, resource: dict[str, Any], *, original_type: str,
                    apiv3_key: bytes | None = None) -> bytes:
        summary = {"TRANSACTION.SUCCESS": "支付成功", "REFUND.SUCCESS": "退款成功"}.get(event_type, "通知")
        return json.dumps({
            "id": "EV-" + secrets.token_hex(12), "create_time": rfc3339(self.clock.now()),
            "resource_type": "encrypt-resource", "event_type": event_type, "summary": summary,
            "resource": self.encrypt_resource(resource, original_type, key=apiv3_key),
        }, ensure_ascii=False).encode()

    def encrypt_resource(self, content: dict[str, Any], original_type: str, *,
                         key: bytes | None = None) -> dict[str, str]:
        nonce = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(12))
        ciphertext = AESGCM(key or self.apiv3_key).encrypt(
            nonce.encode(), json.dumps(content, ensure_ascii=False).encode(), original_type.encode())
        return {"original_type": original_type, "algorithm": "AEAD_AES_256_GCM",
                "ciphertext": base64.b64encode(ciphertext).decode(), "associated_data": original_type,
                "nonce": nonce}

    def signed_headers(self, body: bytes, *, key: RSAPrivateKey | None = None, serial: str | None = None,
                       timestamp: int | None = None) -> dict[str, str]:
        ts = str(int(self.clock.now().timestamp()) if timestamp is None else timestamp)
        nonce = secrets.token_hex(16).upper()
        return {
            "Wechatpay-Timestamp": ts, "Wechatpay-Nonce": nonce,
            "Wechatpay-Signature": rsa_sign(key or self.platform_key, response_message(ts, nonce, body)),
            "Wechatpay-Serial": serial or self.platform_serial,
            "Wechatpay-Signature-Type": "WECHATPAY2-SHA256-RSA2048",
            "Content-Type": "application/json",
        }

    def notice_for(self, tx: FakeTransaction) -> tuple[bytes, dict[str, str]]:
        body = self.notice_body("TRANSACTION.SUCCESS", self.transaction_resource(tx), original_type="transaction")
        return body, self.signed_headers(body)

    def refund_notice_for(self, refund: FakeRefund) -> tuple[bytes, dict[str, str]]:
        body = self.notice_body(f"REFUND.{refund.status}", self.refund_resource(refund), original_type="refund")
        return body, self.signed_headers(body)

    # --- the API ---------------------------------------------------------------------------------

    def _api(self, handler: ApiHandler) -> Handler:
        """Every API call: the merchant's signature first, then the call; what was asked is kept."""
        async def handle(request: web.Request) -> web.StreamResponse:
            body = await request.text()
            merchant = self._authenticate(request, body)
            if merchant is None:
                response = self._answer(401, {"code": "SIGN_ERROR", "message": "错误的签名，验签失败"})
            else:
                response = await handler(request, merchant, body)
            self.requests.append((request.method, request.path, response.status))
            return response

        return handle

    def _authenticate(self, request: web.Request, body: str) -> Merchant | None:
        fields = parse_authorization(request.headers.get("Authorization", ""))
        merchant = self.merchants.get(fields.get("mchid", ""))
        timestamp = fields.get("timestamp", "")
        if merchant is None or fields.get("serial_no") != merchant.serial or not timestamp.isdigit():
            return None
        if abs(self.clock.now().timestamp() - int(timestamp)) > MAX_SKEW_SECONDS:
            return None
        message = request_message(request.method, request.raw_path, timestamp, fields.get("nonce_str", ""), body)
        return merchant if rsa_verify(merchant.public_key, fields.get("signature", ""), message) else None

    def _answer(self, status: int, payload: dict[str, Any] | None = None) -> web.Response:
        body = json.dumps(payload, ensure_ascii=False).encode() if payload is not None else b""
        headers = self.signed_headers(body, key=self.answer_key)
        if self.tamper_answers:
            body = body.replace(b"1", b"2", 1) if b"1" in body else body + b" "
        headers["Request-ID"] = secrets.token_hex(16)
        if not body:
            headers.pop("Content-Type")
        return web.Response(status=status, body=body or None, headers=headers)

    def _error(self, status: int, code: str, message: str) -> web.Response:
        return self._answer(status, {"code": code, "message": message})

    def _json(self, body: str) -> dict[str, Any] | None:
        try:
            data = json.loads(body)
        except ValueError:
            return None
        return data if isinstance(data, dict) else None

    async def _create(self, request: web.Request, merchant: Merchant, body: str) -> web.Response:
        scene = request.match_info["scene"]
        data = self._json(body)
        if scene not in TRADE_TYPES or data is None:
            return self._error(400, "PARAM_ERROR", "参数错误")
        if data.get("mchid") != merchant.mchid or data.get("appid") != merchant.appid:
            return self._error(400, "APPID_MCHID_NOT_MATCH", "appid和mch_id不匹配")
        amount = data.get("amount") or {}
        out_trade_no, total = data.get("out_trade_no"), amount.get("total")
        if (not isinstance(out_trade_no, str) or not OUT_TRADE_NO.match(out_trade_no)
                or not isinstance(total, int) or total <= 0 or amount.get("currency", "CNY") != "CNY"
                or not data.get("description") or not str(data.get("notify_url", "")).startswith("http")):
            return self._error(400, "PARAM_ERROR", "参数错误")
        scene_info, payer = data.get("scene_info") or {}, data.get("payer") or {}
        if scene == "h5" and not (scene_info.get("payer_client_ip") and (scene_info.get("h5_info") or {}).get("type")):
            return self._error(400, "PARAM_ERROR", "缺少参数 scene_info.h5_info")
        if scene == "jsapi" and not payer.get("openid"):
            return self._error(400, "PARAM_ERROR", "缺少参数 payer.openid")
        time_expire = datetime.fromisoformat(data["time_expire"]) if data.get("time_expire") else None
        existing = self.transactions.get((merchant.mchid, out_trade_no))
        if existing is not None:
            if existing.trade_state in ("SUCCESS", "REFUND"):
                return self._error(403, "ORDERPAID", "该订单已支付")
            if existing.trade_state == "CLOSED":
                return self._error(400, "ORDER_CLOSED", "订单已关闭")
            asked = (TRADE_TYPES[scene], total, data["description"])
            if (existing.trade_type, existing.total, existing.description) != asked:
                return self._error(403, "OUT_TRADE_NO_USED", "商户订单号重复")
            tx = existing  # the same order placed again: the same prepay
        else:
            tx = FakeTransaction(
                mchid=merchant.mchid, appid=merchant.appid, out_trade_no=out_trade_no,
                trade_type=TRADE_TYPES[scene], description=data["description"], total=total, currency="CNY",
                notify_url=data["notify_url"], time_expire=time_expire,
                prepay_id="wx" + f"{self.clock.now():%d%H%M%S}" + secrets.token_hex(12),
                openid=payer.get("openid"), client_ip=scene_info.get("payer_client_ip"),
            )
            self.transactions[(merchant.mchid, out_trade_no)] = tx
        if scene == "native":
            return self._answer(200, {"code_url": f"weixin://wxpay/bizpayurl?pr={tx.prepay_id[-10:]}"})
        if scene == "h5":
            return self._answer(200, {"h5_url": f"{self.base_url}/cgi-bin/mmpayweb-bin/checkmweb?"
                                                f"prepay_id={tx.prepay_id}&package={secrets.randbelow(10**10)}"})
        return self._answer(200, {"prepay_id": tx.prepay_id})

    def _transaction_answer(self, tx: FakeTransaction) -> dict[str, Any]:
        answer: dict[str, Any] = {
            "appid": tx.appid, "mchid": tx.mchid, "out_trade_no": tx.out_trade_no, "trade_type": tx.trade_type,
            "trade_state": tx.trade_state,
            "trade_state_desc": {"SUCCESS": "支付成功", "NOTPAY": "未支付", "CLOSED": "已关闭",
                                 "REFUND": "转入退款"}.get(tx.trade_state, ""),
            "attach": "", "amount": {"total": tx.total, "currency": tx.currency},
        }
        if tx.transaction_id:
            answer.update(transaction_id=tx.transaction_id, bank_type="OTHERS",
                          success_time=rfc3339(tx.success_time or self.clock.now()),
                          payer={"openid": tx.openid or ""})
            answer["amount"].update(payer_total=tx.total, payer_currency="CNY")
        return answer

    async def _query(self, request: web.Request, merchant: Merchant, body: str) -> web.Response:
        if request.query.get("mchid") != merchant.mchid:
            return self._error(400, "PARAM_ERROR", "mchid 与商户号不一致")
        tx = self.transactions.get((merchant.mchid, request.match_info["out_trade_no"]))
        if tx is None:
            return self._error(404, "ORDER_NOT_EXIST", "订单不存在")
        return self._answer(200, self._transaction_answer(tx))

    async def _close(self, request: web.Request, merchant: Merchant, body: str) -> web.Response:
        data = self._json(body)
        if data is None or data.get("mchid") != merchant.mchid:
            return self._error(400, "PARAM_ERROR", "参数错误")
        tx = self.transactions.get((merchant.mchid, request.match_info["out_trade_no"]))
        if tx is None:
            return self._error(404, "ORDER_NOT_EXIST", "订单不存在")
        if tx.trade_state in ("SUCCESS", "REFUND"):
            return self._error(400, "ORDERPAID", "订单已支付")
        tx.trade_state = "CLOSED"
        return self._answer(204)

    def _refund_answer(self, refund: FakeRefund) -> dict[str, Any]:
        answer: dict[str, Any] = {
            "refund_id": refund.refund_id, "out_refund_no": refund.out_refund_no,
            "transaction_id": refund.transaction_id, "out_trade_no": refund.out_trade_no, "channel": "ORIGINAL",
            "user_received_account": "支付用户零钱", "create_time": rfc3339(refund.create_time),
            "status": refund.status, "funds_account": "AVAILABLE",
            "amount": {"total": refund.total, "refund": refund.refund, "payer_total": refund.total,
                       "payer_refund": refund.refund, "settlement_refund": refund.refund,
                       "settlement_total": refund.total, "discount_refund": 0, "currency": "CNY", "refund_fee": 0},
        }
        if refund.success_time is not None:
            answer["success_time"] = rfc3339(refund.success_time)
        return answer

    async def _refund(self, request: web.Request, merchant: Merchant, body: str) -> web.Response:
        data = self._json(body)
        if data is None:
            return self._error(400, "PARAM_ERROR", "参数错误")
        amount = data.get("amount") or {}
        out_refund_no, refund, total = data.get("out_refund_no"), amount.get("refund"), amount.get("total")
        if (not isinstance(out_refund_no, str) or not out_refund_no or not isinstance(refund, int) or refund <= 0
                or not isinstance(total, int) or amount.get("currency") != "CNY"):
            return self._error(400, "PARAM_ERROR", "参数错误")
        tx = self.transactions.get((merchant.mchid, str(data.get("out_trade_no", ""))))
        if tx is None:
            return self._error(404, "RESOURCE_NOT_EXISTS", "订单不存在")
        existing = self.refunds.get((merchant.mchid, out_refund_no))
        if existing is not None:
            if (existing.out_trade_no, existing.refund, existing.total) != (tx.out_trade_no, refund, total):
                return self._error(400, "INVALID_REQUEST", "同一退款单号的退款参数不一致")
            return self._answer(200, self._refund_answer(existing))  # the same refund asked again
        if tx.trade_state not in ("SUCCESS", "REFUND") or tx.transaction_id is None:
            return self._error(400, "INVALID_REQUEST", "订单未支付")
        if total != tx.total:
            return self._error(400, "INVALID_REQUEST", "订单金额与原订单不一致")
        if tx.refunded + refund > tx.total:
            return self._error(400, "INVALID_REQUEST", "申请退款金额超过订单可退金额")
        self._seq += 1
        made = FakeRefund(
            mchid=merchant.mchid, out_refund_no=out_refund_no, refund_id=f"50300{self._seq:027d}",
            out_trade_no=tx.out_trade_no,
            transaction_id=tx.transaction_id, refund=refund, total=total, reason=str(data.get("reason", "")),
            notify_url=data.get("notify_url"), create_time=self.clock.now(),
        )
        self.refunds[(merchant.mchid, out_refund_no)] = made
        tx.refunds.append(made)
        tx.trade_state = "REFUND"
        task = asyncio.get_running_loop().create_task(self._finish_refund(made))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return self._answer(200, self._refund_answer(made))

    async def _finish_refund(self, refund: FakeRefund) -> None:
        await asyncio.sleep(self.refund_delay)
        if self.refund_gate is not None:
            await self.refund_gate.wait()
        refund.status, refund.success_time = "SUCCESS", self.clock.now()
        if refund.notify_url:
            self.notices.send(refund.notify_url, lambda: self.refund_notice_for(refund))

    async def _query_refund(self, request: web.Request, merchant: Merchant, body: str) -> web.Response:
        refund = self.refunds.get((merchant.mchid, request.match_info["out_refund_no"]))
        if refund is None:
            return self._error(404, "RESOURCE_NOT_EXISTS", "退款单不存在")
        return self._answer(200, self._refund_answer(refund))

    # --- the buyer's pages (the playground) ----------------------------------------------------------

    async def _h5_page(self, request: web.Request) -> web.Response:
        prepay_id = request.query.get("prepay_id", "")
        tx = next((t for t in self.transactions.values() if t.prepay_id == prepay_id), None)
        if tx is None:
            return web.Response(status=404, text="订单不存在")
        back = request.query.get("redirect_url", "")
        return web.Response(content_type="text/html", text=(
            f"<!doctype html><meta charset=utf-8><title>微信支付 (fake)</title>"
            f"<p>{tx.description} ¥{tx.total // 100}.{tx.total % 100:02d} — {tx.trade_state}</p>"
            f"<form method=post action='/fake/pay/{tx.mchid}/{tx.out_trade_no}'>"
            f"<input type=hidden name=redirect_url value='{_attr(back)}'><button>确认支付</button></form>"))

    async def _pay_form(self, request: web.Request) -> web.Response:
        form = await request.post()
        try:
            await self.pay(request.match_info["mchid"], request.match_info["out_trade_no"])
        except (LookupError, ValueError) as problem:
            return web.Response(status=400, text=str(problem))
        back = str(form.get("redirect_url", ""))
        return web.Response(status=303, headers={"Location": back}) if back else web.Response(text="支付成功")


    # --- WeChat's OAuth (网页授权) ------------------------------------------------------------------

    async def _oauth_authorize(self, request: web.Request) -> web.Response:
        q = request.query
        appid, redirect_uri, state = q.get("appid", ""), q.get("redirect_uri", ""), q.get("state", "")
        problem = ("appid" if appid not in self.app_secrets else
                   "redirect_uri" if not redirect_uri.startswith(("http://", "https://")) else
                   "response_type" if q.get("response_type") != "code" else
                   "scope" if q.get("scope") not in ("snsapi_base", "snsapi_userinfo") else
                   "state" if not OAUTH_STATE.match(state) else None)
        self.oauth_requests.append((request.path, problem or "code"))
        if problem is not None:  # WeChat shows its own error page; nobody is sent back
            return web.Response(status=400, text=f"{problem} 参数错误")
        code = secrets.token_hex(16)
        self.oauth_codes[code] = OAuthCode(appid, self.oauth_openid, self.clock.now().timestamp())
        back = redirect_uri + ("&" if "?" in redirect_uri else "?") + urlencode({"code": code, "state": state})
        return web.Response(status=302, headers={"Location": back})

    async def _oauth_access_token(self, request: web.Request) -> web.Response:
        q = request.query
        appid, code = q.get("appid", ""), q.get("code", "")
        found = self.oauth_codes.get(code)
        if appid not in self.app_secrets:
            answer: dict[str, Any] = {"errcode": 40013, "errmsg": "invalid appid"}
        elif q.get("secret") != self.app_secrets[appid]:
            answer = {"errcode": 40125, "errmsg": "invalid appsecret"}
        elif q.get("grant_type") != "authorization_code":
            answer = {"errcode": 40002, "errmsg": "invalid grant_type"}
        elif found is None or found.appid != appid or \
                self.clock.now().timestamp() - found.issued > OAUTH_CODE_SECONDS:
            answer = {"errcode": 40029, "errmsg": "invalid code"}
        elif found.used:
            answer = {"errcode": 40163, "errmsg": "code been used"}
        else:
            found.used = True
            answer = {"access_token": secrets.token_urlsafe(32), "expires_in": 7200,
                      "refresh_token": secrets.token_urlsafe(32), "openid": found.openid, "scope": "snsapi_base"}
        self.oauth_requests.append((request.path, str(answer.get("errcode", "openid"))))
        return web.json_response(answer)  # WeChat answers 200 with an errcode when it refuses


@dataclass
class OAuthCode:
    appid: str
    openid: str
    issued: float
    used: bool = False


def _attr(value: str) -> str:
    return value.replace("&", "&amp;").replace("'", "&#39;").replace("<", "&lt;")
