"""The browser playground with a local payment provider instead of the sandbox (`--gateway
wechat|alipay`): the fake WeChat Pay or Alipay of the tests runs in the playground's process with
keys made at start, and the bot's real adapter talks to it over HTTP. For WeChat Pay's Native
QR code, a page stands in for the buyer's phone: `/wechat/scan` shows the open QR codes and
「模拟扫码支付」 pays one, as scanning it with WeChat would."""
from __future__ import annotations

from html import escape
from typing import Any

import segno
from aiohttp import web

from config.settings import Settings
from esign_devkit.testing.fake_alipay import FakeAlipay
from esign_devkit.testing.fake_wechat_pay import FakeWechatPay

GATEWAYS = ("sandbox", "wechat", "alipay")
RETRIES = (2.0, 5.0, 15.0, 60.0)  # the providers' hours of retries, shortened for a session at the keyboard
FAKE: web.AppKey[Any] = web.AppKey("esign_fake_provider", object)


async def start_provider(name: str, settings: Settings) -> tuple[Settings, FakeWechatPay | FakeAlipay | None]:
    """The settings with WEB_GATEWAY=name talking to a local fake of it (started), or unchanged
    for the sandbox."""
    if name == "sandbox":
        return settings, None
    fake: FakeWechatPay | FakeAlipay
    if name == "wechat":
        fake = FakeWechatPay(retry_schedule=RETRIES)
        await fake.start()
        given = fake.merchant_settings()
    else:
        fake = FakeAlipay(retry_schedule=RETRIES)
        await fake.start()
        given = fake.app_settings()
    # Validated again: the keys are checked (and typed) as they would be from the environment.
    return Settings(_env_file=None, **{**settings.model_dump(), **given, "web_gateway": name}), fake


def add_scan_page(app: web.Application, fake: FakeWechatPay) -> None:
    app[FAKE] = fake
    app.router.add_get("/wechat/scan", _scan_page)
    app.router.add_post("/wechat/scan", _scan)


async def _scan_page(request: web.Request) -> web.Response:
    fake: FakeWechatPay = request.app[FAKE]
    rows = []
    for tx in fake.transactions.values():
        if tx.trade_type != "NATIVE" or tx.trade_state != "NOTPAY":
            continue
        code_url = f"weixin://wxpay/bizpayurl?pr={tx.prepay_id[-10:]}"
        qr = segno.make(code_url, error="m").svg_inline(scale=3)
        rows.append(f"<li>{qr}<p>{escape(tx.description)} ¥{tx.total // 100}.{tx.total % 100:02d} · "
                    f"{escape(tx.out_trade_no)}</p><form method=post><input type=hidden name=code_url "
                    f"value='{escape(code_url, quote=True)}'><button>模拟扫码支付</button></form></li>")
    body = "".join(rows) or "<p>没有待支付的二维码：在网页收银台选择微信支付后刷新本页。</p>"
    return web.Response(content_type="text/html", text=(
        "<!doctype html><meta charset=utf-8><meta http-equiv=refresh content=5><title>微信扫一扫 (playground)</title>"
        f"<h1>微信扫一扫 (playground)</h1><ul>{body}</ul>"))


async def _scan(request: web.Request) -> web.Response:
    fake: FakeWechatPay = request.app[FAKE]
    form = await request.post()
    try:
        await fake.scan(str(form.get("code_url", "")))
    except (LookupError, ValueError) as problem:
        return web.Response(status=400, text=str(problem))
    return web.Response(status=303, headers={"Location": "/wechat/scan"})
