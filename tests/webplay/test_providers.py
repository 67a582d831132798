"""The browser playground with a local WeChat Pay (`--gateway wechat`): the bot's real adapter is
configured against the fake, and the 扫一扫 page shows the open Native QR codes and pays one."""
from __future__ import annotations

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from esign_devkit.webplay.providers import add_scan_page, start_provider

from bot.app import build_gateway
from config.settings import Settings
from services.clock import SystemClock
from services.wechat_pay import WechatPayGateway, WechatPayRequest


async def test_playground_wechat_gateway_and_its_scan_page_pay_a_native_qr_code(redis):
    settings, fake = await start_provider("wechat", Settings(_env_file=None, code_secret="x"))
    gateway = build_gateway(settings, redis, SystemClock())
    app = web.Application()
    add_scan_page(app, fake)
    client = TestClient(TestServer(app))
    await client.start_server()
    try:
        assert settings.web_gateways == ["wechat"] and isinstance(gateway, WechatPayGateway)
        session = await gateway.create_payment(WechatPayRequest(
            order_id="oplayground01", amount_fen=5_980_000, currency="CNY", description="旗舰版 1年",
            notify_url="https://shop.example/payments/notify/wechat", return_url="https://shop.example/r"))
        page = await client.get("/wechat/scan")
        html = await page.text()
        assert page.status == 200 and "oplayground01" in html and "<svg" in html and "¥59800.00" in html

        paid = await client.post("/wechat/scan", data={"code_url": session.code_url}, allow_redirects=False)

        assert paid.status == 303
        assert fake.transaction(settings.wechat_mchid, "oplayground01").trade_state == "SUCCESS"
        assert "oplayground01" not in await (await client.get("/wechat/scan")).text()
    finally:
        await client.close()
        await gateway.close()
        await fake.close()
