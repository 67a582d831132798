"""F12: one aiohttp application serves the Telegram webhook (secret token checked), the
checkout pages, the payment notices and /healthz; an https PUBLIC_BASE_URL makes 网页端购买 a
Telegram Mini App button."""
from __future__ import annotations

import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import TestClient, TestServer
from esign_devkit.testing.harness import BotHarness
from pydantic import ValidationError

from bot.app import build_context
from bot.web import build_web_app
from config.settings import Settings
from services.payment_gateway import SandboxGateway
from tests.flows.steps import PROFESSIONAL, to_editions
from tests.web.conftest import web_settings

WEBHOOK = "/telegram/webhook"


async def test_F12_the_webhook_checks_telegrams_secret_token_and_feeds_the_dispatcher(redis, clock):
    harness = BotHarness(redis, clock=clock, settings=web_settings("http://127.0.0.1:8080"))
    app = build_web_app(harness.app, harness.bot, harness.dp, webhook_path=WEBHOOK, webhook_secret_token="s3cret")
    buyer = harness.user()
    update = harness.telegram.message_update(buyer.fake, "/start").model_dump(mode="json", exclude_none=True)
    async with TestClient(TestServer(app)) as client:
        for headers in ({}, {"X-Telegram-Bot-Api-Secret-Token": "wrong"}):
            async with client.post(WEBHOOK, json=update, headers=headers) as resp:
                assert resp.status == 401
        assert harness.telegram.messages(buyer.id, from_bot=True) == []

        async with client.post(WEBHOOK, json=update, headers={"X-Telegram-Bot-Api-Secret-Token": "s3cret"}) as resp:
            assert resp.status == 200
        reply = harness.telegram.last_message(buyer.id)  # answered only once handled
        assert reply is not None and "欢迎使用腾讯电子签" in reply["text"]
        async with client.get("/healthz") as resp:  # the same app serves the rest
            assert resp.status == 200
    await harness.close()


async def test_F12_without_webhook_path_there_is_no_webhook_route(web_world):
    async with web_world.client.post(WEBHOOK, json={"update_id": 1}) as resp:
        assert resp.status == 404


async def test_readyz_says_when_redis_does_not_answer_and_healthz_stays_alive(clock):
    from esign_devkit.testing.fake_telegram import FakeTelegram

    dead = aioredis.Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    bot = FakeTelegram().make_bot()
    app = build_web_app(build_context(web_settings("http://127.0.0.1:8080"), dead, clock=clock), bot)
    async with TestClient(TestServer(app)) as client:
        async with client.get("/readyz") as resp:
            assert resp.status == 503 and (await resp.json())["status"] == "unavailable"
        async with client.get("/healthz") as resp:  # liveness: the process itself is fine
            assert resp.status == 200
    await bot.session.close()
    await dead.aclose()


async def test_F12_an_https_base_url_makes_web_buy_a_mini_app_button(redis, clock):
    harness = BotHarness(redis, clock=clock, settings=web_settings("https://shop.example.com"))
    buyer = harness.user()
    await to_editions(buyer)
    await buyer.tap(PROFESSIONAL)

    message = harness.telegram.last_message(buyer.id)
    [web_buy] = [b for row in message["reply_markup"]["inline_keyboard"] for b in row if b["text"] == "网页端购买"]
    assert "url" not in web_buy
    assert web_buy["web_app"]["url"].startswith("https://shop.example.com/checkout/")
    assert web_buy["web_app"]["url"] in buyer.screen.text  # and the same link to copy (R4)
    await harness.close()


async def test_F12_https_pages_send_hsts_and_a_cookie_the_mini_app_iframe_keeps(redis, clock):
    harness = BotHarness(redis, clock=clock, settings=web_settings("https://shop.example.com"))
    app = build_web_app(harness.app, harness.bot, harness.dp)
    buyer = harness.user()
    from services.catalog import Cart

    url = await harness.app.checkout.link_for_cart(user_id=buyer.id, chat_id=buyer.id, cart=Cart(edition="flagship"),
                                                   phone=None, enterprise_name=None)
    async with (
        TestClient(TestServer(app)) as client,
        client.get(url.removeprefix("https://shop.example.com")) as resp,
    ):
        assert resp.status == 200
        assert resp.headers["Strict-Transport-Security"].startswith("max-age=")
        cookie = resp.headers["Set-Cookie"]
        assert "Secure" in cookie and "SameSite=None" in cookie and "HttpOnly" in cookie
    await harness.close()


def test_F12_build_web_app_makes_the_sandbox_gateway_by_default(redis, clock):
    harness = BotHarness(redis, clock=clock, settings=web_settings("http://127.0.0.1:8080"))
    from bot.web.app import STATE

    app = build_web_app(harness.app, harness.bot)
    assert isinstance(app[STATE].gateway, SandboxGateway)


def test_F12_production_needs_a_real_gateway():
    # Every production rule is in tests/security/test_production_settings.py.
    for gateway in (None, "sandbox"):
        with pytest.raises(ValidationError, match="WEB_GATEWAY must be wechat and/or alipay in production"):
            Settings(_env_file=None, environment="production", web_gateway=gateway)
    assert Settings(_env_file=None).web_gateway_name == "sandbox"  # the default outside production
    with pytest.raises(ValidationError, match=r"PUBLIC_BASE_URL|public_base_url"):
        Settings(_env_file=None, public_base_url="shop.example.com")


async def test_metrics_are_scraped_with_updates_by_type_and_outcome(redis, clock):
    token = "metrics-test-token-0123456789"
    harness = BotHarness(redis, clock=clock, settings=web_settings("http://127.0.0.1:8080", metrics_token=token))
    buyer = harness.user()
    await buyer.send("/start")
    await buyer.tap("购买套餐")
    app = build_web_app(harness.app, harness.bot, harness.dp)
    async with TestClient(TestServer(app)) as client:
        async with client.get("/metrics", headers={"Authorization": f"Bearer {token}"}) as resp:
            assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/plain")
            body = await resp.text()
        async with client.get("/readyz") as resp:
            assert resp.status == 200
    assert 'esign_updates_total{outcome="ok",type="message"}' in body
    assert 'esign_updates_total{outcome="ok",type="callback_query"}' in body
    assert "esign_update_seconds_bucket" in body
    await harness.close()
