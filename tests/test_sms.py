from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from services.clock import FixedClock
from services.sms import (
    ConsoleSms,
    HttpSmsGateway,
    SmsDeliveryError,
    SmsGateway,
    build_sms_gateway,
)

PHONE = "+8613800138000"


async def test_console_prints_one_masked_line_per_message(capsys: pytest.CaptureFixture[str]) -> None:
    sms = ConsoleSms()
    await sms.send(PHONE, "Your code is 123456.")
    await sms.send("+16502530000", "hello")
    out = capsys.readouterr().out
    assert out.splitlines() == [
        "SMS to +86*******8000: Your code is 123456.",
        "SMS to +1******0000: hello",
    ]
    assert "13800138000" not in out


async def test_console_outbox_keeps_the_full_phone_and_finds_codes(clock: FixedClock) -> None:
    sms = ConsoleSms(clock=clock)
    assert sms.last_to(PHONE) is None and sms.last_code(PHONE) is None
    await sms.send(PHONE, "old 111111")
    await sms.send("+16502530000", "other 222222")
    await sms.send(PHONE, "order 1234567, code 654321 valid 5 min, ref 333333")
    assert sms.outbox[0].phone == PHONE and sms.outbox[0].at == clock.now()
    assert sms.last_to(PHONE).startswith("order")
    assert sms.last_code(PHONE) == "333333"  # the last 6-digit run; 7-digit runs don't count
    assert sms.last_code("+16502530000") == "222222"
    await sms.send(PHONE, "no code here")
    assert sms.last_code(PHONE) is None
    assert isinstance(sms, SmsGateway)


@pytest.fixture
async def provider():
    """A fake SMS provider on a real local port; set `state["status"]` / `state["delay"]` per test."""
    state: dict[str, Any] = {"status": 200, "delay": 0.0, "requests": []}

    async def handle(request: web.Request) -> web.Response:
        state["requests"].append((dict(request.headers), await request.json()))
        await asyncio.sleep(state["delay"])
        return web.json_response({"ok": state["status"] < 300}, status=state["status"])

    app = web.Application()
    app.router.add_post("/sms", handle)
    server = TestServer(app)
    await server.start_server()
    state["url"] = str(server.make_url("/sms"))
    yield state
    await server.close()


async def test_http_gateway_posts_json_with_bearer_key(provider: dict[str, Any]) -> None:
    gw = HttpSmsGateway(provider["url"], "k-123", "腾讯电子签")
    await gw.send(PHONE, "code 123456")
    [(headers, body)] = provider["requests"]
    assert headers["Authorization"] == "Bearer k-123"
    assert body == {"phone": PHONE, "text": "code 123456", "sign": "腾讯电子签"}


@pytest.mark.parametrize("status", [400, 401, 500, 503])
async def test_http_gateway_raises_on_non_2xx(provider: dict[str, Any], status: int) -> None:
    provider["status"] = status
    with pytest.raises(SmsDeliveryError, match=str(status)) as err:
        await HttpSmsGateway(provider["url"], "k", "s").send(PHONE, "code 123456")
    assert "13800138000" not in str(err.value) and "123456" not in str(err.value)


async def test_http_gateway_accepts_any_2xx(provider: dict[str, Any]) -> None:
    provider["status"] = 202
    await HttpSmsGateway(provider["url"], "k", "s").send(PHONE, "x")


async def test_http_gateway_raises_on_timeout(provider: dict[str, Any]) -> None:
    provider["delay"] = 1.0
    with pytest.raises(SmsDeliveryError, match="timed out"):
        await HttpSmsGateway(provider["url"], "k", "s", timeout=0.1).send(PHONE, "x")


async def test_http_gateway_raises_when_unreachable(provider: dict[str, Any]) -> None:
    with pytest.raises(SmsDeliveryError):
        await HttpSmsGateway("http://127.0.0.1:9/sms", "k", "s", timeout=2).send(PHONE, "x")


def test_build_gateway() -> None:
    assert isinstance(build_sms_gateway("console", url="ignored"), ConsoleSms)
    gw = build_sms_gateway("HTTP", url="http://x/sms", api_key="k", sign_name="s", timeout=3)
    assert isinstance(gw, HttpSmsGateway) and gw.timeout.total == 3
    with pytest.raises(ValueError, match="api_key"):
        build_sms_gateway("http", url="http://x/sms", sign_name="s")
    with pytest.raises(ValueError, match="carrier-pigeon"):
        build_sms_gateway("carrier-pigeon")
