"""A local Alipay open platform (public-key mode) for tests and the playground.

- Apps are registered with their app_id and app public key; every request's RSA2 signature is
  verified (sorted parameters without `sign`), refused with code 40002 isv.invalid-signature.
- The fake's own key pair (the "Alipay public key") is generated at start; every API answer is
  `{"<method>_response": {...}, "sign": "..."}`, signed over the exact text of the object.
- The buyer's browser opens the signed page-pay / wap-pay URL at `/gateway.do`: the trade is
  created then (as at Alipay: before the buyer arrives, the trade does not exist) and a cashier
  page offers to pay; `pay(app_id, out_trade_no)` does the same from a test.
- Paying posts the signed form notice (trade_status TRADE_SUCCESS) to notify_url, again until
  the answer is exactly `success`, on Alipay's schedule: 4m, 10m, 10m, 1h, 2h, 6h, 15h (8 in
  all; `retry_schedule` compresses it); the buyer is sent to return_url with signed parameters.
- alipay.trade.query, .close, .refund (idempotent by out_request_no, partial, never beyond the
  total; a refund is told on notify_url with out_biz_no and refund_fee) and
  .fastpay.refund.query.
- Test hooks: `tamper_answers` changes answers after signing; `answer_key` signs with another
  key; `notice_params`/`sign_notice` build notices to forge from.
"""
from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey
from multidict import MultiDictProxy

from esign_devkit.testing.fake_provider import LocalServer, NoticeSender, private_pem, public_pem
from esign_devkit.testing.fake_wechat_pay import new_rsa_key
from services.alipay import (
    NOTICE_UNSIGNED,
    REQUEST_UNSIGNED,
    YUAN,
    beijing_time,
    parse_beijing,
    sign_content,
    to_fen,
    yuan,
)
from services.clock import Clock, SystemClock
from services.wechat_pay import rsa_sign, rsa_verify

ALIPAY_RETRY_SCHEDULE: tuple[float, ...] = (240, 600, 600, 3600, 7200, 21600, 54000)
PAGE_METHODS = {"alipay.trade.page.pay": "FAST_INSTANT_TRADE_PAY", "alipay.trade.wap.pay": "QUICK_WAP_WAY"}


@dataclass
class App:
    app_id: str
    public_key: RSAPublicKey
    seller_id: str


@dataclass
class FakeAlipayRefund:
    out_request_no: str
    amount: int
    reason: str
    at: datetime


@dataclass
class FakeTrade:
    app_id: str
    out_trade_no: str
    trade_no: str
    subject: str
    total: int
    product_code: str
    notify_url: str
    return_url: str
    time_expire: datetime | None
    gmt_create: datetime
    trade_status: str = "WAIT_BUYER_PAY"
    gmt_payment: datetime | None = None
    refunds: dict[str, FakeAlipayRefund] = field(default_factory=dict)

    @property
    def refunded(self) -> int:
        return sum(r.amount for r in self.refunds.values())


class FakeAlipay:
    def __init__(self, *, clock: Clock | None = None, retry_schedule: Sequence[float] = ALIPAY_RETRY_SCHEDULE) -> None:
        self.clock = clock or SystemClock()
        self.alipay_key = new_rsa_key()
        self.apps: dict[str, App] = {}
        self.trades: dict[tuple[str, str], FakeTrade] = {}
        self.requests: list[tuple[str, str]] = []  # method, code answered
        self.tamper_answers = False
        self.answer_key: RSAPrivateKey | None = None
        self.notices = NoticeSender(retry_schedule, lambda _status, answer: answer.strip() == "success")
        self._seq = 0
        app = web.Application()
        app.router.add_get("/gateway.do", self._gateway)
        app.router.add_post("/gateway.do", self._gateway)
        app.router.add_post("/fake/pay/{app_id}/{out_trade_no}", self._pay_form)
        self._server = LocalServer(app)
        self.base_url = ""

    @property
    def alipay_public_key(self) -> RSAPublicKey:
        return self.alipay_key.public_key()

    @property
    def gateway_url(self) -> str:
        return f"{self.base_url}/gateway.do"

    async def start(self) -> str:
        self.base_url = await self._server.start()
        return self.base_url

    async def close(self) -> None:
        await self.notices.close()
        await self._server.stop()

    async def __aenter__(self) -> FakeAlipay:
        await self.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    def add_app(self, *, app_id: str, public_key: RSAPublicKey, seller_id: str = "2088102177846880") -> App:
        app = App(app_id, public_key, seller_id)
        self.apps[app_id] = app
        return app

    def app_settings(self, *, app_id: str = "2021000122671234", seller_id: str = "2088102177846880") -> dict[str, Any]:
        """An app registered here with a key made now, and the bot's settings (ALIPAY_*) to talk
        to this fake as to Alipay. Call it once the fake has started."""
        key = new_rsa_key()
        self.add_app(app_id=app_id, public_key=key.public_key(), seller_id=seller_id)
        return {"alipay_app_id": app_id, "alipay_app_private_key": private_pem(key),
                "alipay_public_key": public_pem(self.alipay_public_key), "alipay_gateway_url": self.gateway_url,
                "alipay_seller_id": seller_id}

    def trade(self, app_id: str, out_trade_no: str) -> FakeTrade | None:
        return self.trades.get((app_id, out_trade_no))

    # --- the buyer -------------------------------------------------------------------------------

    async def pay(self, app_id: str, out_trade_no: str) -> FakeTrade:
        """The buyer pays on the cashier page: once; paying again only sends the notice again."""
        trade = self.trades.get((app_id, out_trade_no))
        if trade is None:
            raise LookupError(f"no trade {out_trade_no}: the buyer has not opened the cashier page")
        if trade.trade_status == "WAIT_BUYER_PAY":
            if trade.time_expire is not None and self.clock.now() > trade.time_expire:
                raise ValueError("the trade expired (time_expire)")
            trade.trade_status, trade.gmt_payment = "TRADE_SUCCESS", self.clock.now()
        elif trade.trade_status not in ("TRADE_SUCCESS", "TRADE_FINISHED"):
            raise ValueError(f"the trade is {trade.trade_status}")
        self.notices.send(trade.notify_url, lambda: self.notice_for(trade))
        return trade

    def return_params(self, trade: FakeTrade) -> dict[str, str]:
        """What the buyer's browser brings back to return_url (signed; never proof of payment)."""
        app = self.apps[trade.app_id]
        params = {"charset": "utf-8", "out_trade_no": trade.out_trade_no, "method": "alipay.trade.page.pay.return",
                  "total_amount": yuan(trade.total), "trade_no": trade.trade_no, "auth_app_id": trade.app_id,
                  "version": "1.0", "app_id": trade.app_id, "sign_type": "RSA2", "seller_id": app.seller_id,
                  "timestamp": beijing_time(self.clock.now())}
        params["sign"] = rsa_sign(self.alipay_key, sign_content(params, leave_out=NOTICE_UNSIGNED))
        return params

    # --- notices ---------------------------------------------------------------------------------

    def notice_params(self, trade: FakeTrade, refund: FakeAlipayRefund | None = None) -> dict[str, str]:
        app = self.apps[trade.app_id]
        total = yuan(trade.total)
        params = {
            "notify_time": beijing_time(self.clock.now()), "notify_type": "trade_status_sync",
            "notify_id": secrets.token_hex(16), "app_id": trade.app_id, "charset": "utf-8", "version": "1.0",
            "sign_type": "RSA2", "trade_no": trade.trade_no, "out_trade_no": trade.out_trade_no,
            "buyer_id": "2088102177891234", "buyer_logon_id": "159****5620", "seller_id": app.seller_id,
            "trade_status": trade.trade_status, "total_amount": total, "receipt_amount": total,
            "invoice_amount": total, "buyer_pay_amount": total, "point_amount": "0.00", "subject": trade.subject,
            "gmt_create": beijing_time(trade.gmt_create),
            "fund_bill_list": json.dumps([{"amount": total, "fundChannel": "ALIPAYACCOUNT"}]),
        }
        if trade.gmt_payment is not None:
            params["gmt_payment"] = beijing_time(trade.gmt_payment)
        if refund is not None:
            params.update(out_biz_no=refund.out_request_no, refund_fee=yuan(trade.refunded),
                          gmt_refund=beijing_time(refund.at) + f".{refund.at.microsecond // 1000:03d}")
            if trade.trade_status == "TRADE_CLOSED":
                params["gmt_close"] = beijing_time(refund.at)
        return params

    def sign_notice(self, params: dict[str, str], *, key: RSAPrivateKey | None = None) -> bytes:
        """The form body Alipay posts: the parameters and their signature."""
        signed = {k: v for k, v in params.items() if k != "sign"}
        signed["sign"] = rsa_sign(key or self.alipay_key, sign_content(signed, leave_out=NOTICE_UNSIGNED))
        return urlencode(signed).encode()

    def notice_for(self, trade: FakeTrade, refund: FakeAlipayRefund | None = None) -> tuple[bytes, dict[str, str]]:
        body = self.sign_notice(self.notice_params(trade, refund))
        return body, {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}

    # --- the gateway -----------------------------------------------------------------------------

    async def _gateway(self, request: web.Request) -> web.StreamResponse:
        params = {**request.query}
        if request.method == "POST":
            params.update(_single(await request.post()))
        method = params.get("method", "")
        app = self.apps.get(params.get("app_id", ""))
        signed_ok = (app is not None and params.get("sign_type") == "RSA2"
                     and rsa_verify(app.public_key, params.get("sign", ""),
                                    sign_content(params, leave_out=REQUEST_UNSIGNED)))
        try:
            biz = json.loads(params.get("biz_content", "{}"))
        except ValueError:
            biz = None
        if method in PAGE_METHODS:
            if app is None or not signed_ok:
                return self._page_error("isv.invalid-signature", "验签出错")
            if not isinstance(biz, dict):
                return self._page_error("isv.invalid-parameter", "biz_content")
            return self._cashier_page(app, method, biz, params)
        handler = API_METHODS.get(method)
        if handler is None:
            return self._refuse(method, "40002", "isv.invalid-method", "不存在的方法名")
        if app is None:
            return self._refuse(method, "40002", "isv.invalid-app-id", "无效的AppID参数")
        if not signed_ok:
            return self._refuse(method, "40002", "isv.invalid-signature", "验签出错")
        if not isinstance(biz, dict):
            return self._refuse(method, "40002", "isv.invalid-parameter", "biz_content")
        code, answer = handler(self, app, biz)
        return self._answer(method, code, answer)

    def _answer(self, method: str, code: str, answer: dict[str, Any]) -> web.Response:
        key = method.replace(".", "_") + "_response"
        messages = {"10000": "Success", "40004": "Business Failed", "40002": "Invalid Arguments"}
        inner = json.dumps({"code": code, "msg": messages.get(code, ""), **answer}, ensure_ascii=False,
                           separators=(",", ":"))
        signature = rsa_sign(self.answer_key or self.alipay_key, inner.encode())
        if self.tamper_answers:
            inner = inner.replace('"code":"', '"code": "', 1)  # the same JSON, other characters
        self.requests.append((method, code))
        text = f'{{"{key}":{inner},"sign":"{signature}"}}'
        return web.Response(text=text, content_type="application/json", charset="utf-8")

    def _refuse(self, method: str, code: str, sub_code: str, sub_msg: str) -> web.Response:
        """A gateway refusal (bad signature, unknown app): Alipay does not sign these."""
        key = method.replace(".", "_") + "_response" if method else "error_response"
        self.requests.append((method, code))
        return web.json_response({key: {"code": code, "msg": "Invalid Arguments", "sub_code": sub_code,
                                        "sub_msg": sub_msg}})

    def _page_error(self, sub_code: str, message: str) -> web.Response:
        return web.Response(status=200, content_type="text/html",
                            text=f"<!doctype html><meta charset=utf-8><title>支付宝 - 错误</title>"
                                 f"<p>错误代码 {sub_code}</p><p>{message}</p>")

    def _cashier_page(self, app: App, method: str, biz: dict[str, Any], params: dict[str, str]) -> web.Response:
        out_trade_no, total, subject = biz.get("out_trade_no"), str(biz.get("total_amount", "")), biz.get("subject")
        if (not isinstance(out_trade_no, str) or not out_trade_no or not YUAN.match(total) or to_fen(total) <= 0
                or not subject or biz.get("product_code") != PAGE_METHODS[method]):
            return self._page_error("isv.invalid-parameter", "参数有误")
        trade = self.trades.get((app.app_id, out_trade_no))
        if trade is None:
            self._seq += 1
            expire = biz.get("time_expire")
            trade = FakeTrade(
                app_id=app.app_id, out_trade_no=out_trade_no,
                trade_no=f"{self.clock.now():%Y%m%d}22001{self._seq:015d}",
                subject=str(subject), total=to_fen(total), product_code=PAGE_METHODS[method],
                notify_url=params.get("notify_url", ""), return_url=params.get("return_url", ""),
                time_expire=parse_beijing(expire) if isinstance(expire, str) else None, gmt_create=self.clock.now(),
            )
            self.trades[(app.app_id, out_trade_no)] = trade
        elif trade.total != to_fen(total):
            return self._page_error("ACQ.TRADE_DATA_MATCH_ERROR", "交易信息被篡改")
        return web.Response(content_type="text/html", text=(
            "<!doctype html><meta charset=utf-8><title>支付宝 - 网上支付 (fake)</title>"
            f"<p>{_text(trade.subject)} ¥{yuan(trade.total)} — {trade.trade_status}</p>"
            f"<form method=post action='/fake/pay/{trade.app_id}/{trade.out_trade_no}'><button>确认付款</button></form>"))

    async def _pay_form(self, request: web.Request) -> web.Response:
        try:
            trade = await self.pay(request.match_info["app_id"], request.match_info["out_trade_no"])
        except (LookupError, ValueError) as problem:
            return web.Response(status=400, text=str(problem))
        if not trade.return_url:
            return web.Response(text="支付成功")
        back = trade.return_url + ("&" if "?" in trade.return_url else "?") + urlencode(self.return_params(trade))
        return web.Response(status=303, headers={"Location": back})

    # --- the API methods ---------------------------------------------------------------------------

    def _find(self, app: App, biz: dict[str, Any]) -> FakeTrade | None:
        return self.trades.get((app.app_id, str(biz.get("out_trade_no", ""))))

    def _query(self, app: App, biz: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        trade = self._find(app, biz)
        if trade is None:
            return "40004", {"sub_code": "ACQ.TRADE_NOT_EXIST", "sub_msg": "交易不存在",
                             "out_trade_no": biz.get("out_trade_no", ""), "buyer_pay_amount": "0.00",
                             "invoice_amount": "0.00", "point_amount": "0.00", "receipt_amount": "0.00"}
        answer: dict[str, Any] = {
            "trade_no": trade.trade_no, "out_trade_no": trade.out_trade_no, "buyer_logon_id": "159****5620",
            "trade_status": trade.trade_status, "total_amount": yuan(trade.total),
            "buyer_pay_amount": yuan(trade.total) if trade.gmt_payment else "0.00", "point_amount": "0.00",
            "invoice_amount": yuan(trade.total) if trade.gmt_payment else "0.00",
            "receipt_amount": yuan(trade.total) if trade.gmt_payment else "0.00", "buyer_user_id": "2088102177891234",
        }
        if trade.gmt_payment is not None:
            answer["send_pay_date"] = beijing_time(trade.gmt_payment)
        return "10000", answer

    def _close(self, app: App, biz: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        trade = self._find(app, biz)
        if trade is None:
            return "40004", {"sub_code": "ACQ.TRADE_NOT_EXIST", "sub_msg": "交易不存在"}
        if trade.trade_status != "WAIT_BUYER_PAY":
            return "40004", {"sub_code": "ACQ.TRADE_STATUS_ERROR", "sub_msg": "交易状态不合法"}
        trade.trade_status = "TRADE_CLOSED"
        return "10000", {"trade_no": trade.trade_no, "out_trade_no": trade.out_trade_no}

    def _refund(self, app: App, biz: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        trade = self._find(app, biz)
        if trade is None:
            return "40004", {"sub_code": "ACQ.TRADE_NOT_EXIST", "sub_msg": "交易不存在"}
        amount = str(biz.get("refund_amount", ""))
        if not YUAN.match(amount) or to_fen(amount) <= 0:
            return "40002", {"sub_code": "isv.invalid-parameter", "sub_msg": "refund_amount"}
        # Without out_request_no Alipay takes the trade's number: one (full) refund per trade.
        out_request_no = str(biz.get("out_request_no") or trade.out_trade_no)
        done = {"trade_no": trade.trade_no, "out_trade_no": trade.out_trade_no, "buyer_logon_id": "159****5620",
                "buyer_user_id": "2088102177891234"}
        existing = trade.refunds.get(out_request_no)
        if existing is not None:  # the same request again: nothing moves
            return "10000", {**done, "fund_change": "N", "refund_fee": yuan(trade.refunded),
                             "gmt_refund_pay": beijing_time(existing.at)}
        if trade.trade_status != "TRADE_SUCCESS":
            return "40004", {"sub_code": "ACQ.TRADE_STATUS_ERROR", "sub_msg": "交易状态不合法"}
        if trade.refunded + to_fen(amount) > trade.total:
            return "40004", {"sub_code": "ACQ.REFUND_AMT_NOT_EQUAL_TOTAL", "sub_msg": "退款金额超限"}
        refund = FakeAlipayRefund(out_request_no, to_fen(amount), str(biz.get("refund_reason", "")), self.clock.now())
        trade.refunds[out_request_no] = refund
        if trade.refunded == trade.total:
            trade.trade_status = "TRADE_CLOSED"  # refunded in full
        self.notices.send(trade.notify_url, lambda: self.notice_for(trade, refund))
        return "10000", {**done, "fund_change": "Y", "refund_fee": yuan(trade.refunded),
                         "gmt_refund_pay": beijing_time(refund.at)}

    def _refund_query(self, app: App, biz: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        trade = self._find(app, biz)
        if trade is None:
            return "40004", {"sub_code": "ACQ.TRADE_NOT_EXIST", "sub_msg": "交易不存在"}
        refund = trade.refunds.get(str(biz.get("out_request_no", "")))
        if refund is None:
            return "10000", {}  # Alipay's answer for a refund it does not know: success, and nothing
        answer = {"trade_no": trade.trade_no, "out_trade_no": trade.out_trade_no,
                  "out_request_no": refund.out_request_no, "total_amount": yuan(trade.total),
                  "refund_amount": yuan(refund.amount), "refund_status": "REFUND_SUCCESS"}
        if "gmt_refund_pay" in (biz.get("query_options") or []):
            answer["gmt_refund_pay"] = beijing_time(refund.at)
        return "10000", answer


ApiMethod = Callable[[FakeAlipay, App, dict[str, Any]], tuple[str, dict[str, Any]]]
API_METHODS: dict[str, ApiMethod] = {
    "alipay.trade.query": FakeAlipay._query,
    "alipay.trade.close": FakeAlipay._close,
    "alipay.trade.refund": FakeAlipay._refund,
    "alipay.trade.fastpay.refund.query": FakeAlipay._refund_query,
}


def _single(form: MultiDictProxy[Any]) -> dict[str, str]:
    return {k: str(v) for k, v in form.items()}


def _text(value: str) -> str:
    return value.replace("&", "&amp;").replace("<", "&lt;")
