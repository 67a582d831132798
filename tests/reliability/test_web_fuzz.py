"""docs/reliability.md, row 12 (F12): every web endpoint, fed generated requests, never answers 5xx and
never logs an exception.

Hypothesis draws requests against the production web app (bot.web.build_web_app, with the
Telegram webhook route and the sandbox gateway) on real Redis, through aiohttp's TestClient:
/checkout/<token>/<step> with real and random tokens, steps and form bodies (CSRF field and
cookie real, forged or missing; Origin ours, foreign or missing), payment notices to
/payments/notify/<gateway> (random JSON and bytes, and random JSON *correctly signed*, so it
gets past the signature into validation and the order lookup), the sandbox's cashier page, the
webhook with and without its secret, the health and metrics routes, and random paths.

WEB_FUZZ_EXAMPLES sets the number of requests (a quick default for the suite; CI runs it deeper).
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import time
from urllib.parse import quote, urlencode

from aiohttp.test_utils import TestClient, TestServer
from esign_devkit.testing.harness import BotHarness
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.runtime.redis_client import redis_from_url
from bot.web import build_web_app
from services.clock import FixedClock
from services.payment_gateway import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    PaymentRequest,
    SandboxGateway,
    sign,
)
from tests.conftest import TEST_REDIS_URL
from tests.flows.steps import PROFESSIONAL, to_editions
from tests.web.conftest import CSRF, NOTIFY_SECRET, web_buy_url, web_settings

EXAMPLES = int(os.environ.get("WEB_FUZZ_EXAMPLES", "800"))
WEBHOOK = "/telegram/webhook"
WEBHOOK_SECRET = "fuzz-webhook-secret"
BASE = "http://127.0.0.1:8080"
STEPS = ["", "choose", "reselect", "code", "verify", "change", "submit", "pay", "result"]
FIELDS = ["csrf", "action", "edition", "years", "pack", "phone", "code", "enterprise_name", "name", "lang"]


class ErrorLog(logging.Handler):
    """Every ERROR record of the app, aiohttp's server and aiogram (an exception logged)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


class World:
    """One app and one client for the whole run, on its own event loop (Hypothesis drives it)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.token = self.payment_id = self.csrf = self.sandbox_csrf = self.cookie = ""
        self.run(self._start())

    def run(self, coro):
        return self.loop.run_until_complete(coro)

    async def _start(self) -> None:
        self.redis = redis_from_url(TEST_REDIS_URL)
        await self.redis.flushdb()  # the tests' own index only
        self.clock = FixedClock()

        async def nowhere(url: str, body: bytes, headers: dict[str, str]) -> int:
            return 200  # the sandbox's own notices are not part of this test

        self.gateway = SandboxGateway(self.redis, self.clock, NOTIFY_SECRET.encode(), pay_base_url=BASE,
                                      post=nowhere, retry_delays=())
        self.harness = BotHarness(self.redis, clock=self.clock, settings=web_settings(BASE), gateway=self.gateway)
        app = build_web_app(self.harness.app, self.harness.bot, self.harness.dp,
                            webhook_path=WEBHOOK, webhook_secret_token=WEBHOOK_SECRET)
        self.client = TestClient(TestServer(app))
        await self.client.start_server()
        buyer = self.harness.user(lang="zh")  # a real checkout link, from the chat (F12)
        await to_editions(buyer)
        await buyer.tap(PROFESSIONAL)
        self.token = web_buy_url(buyer).split("/checkout/", 1)[1].split("?")[0].split("/")[0]
        async with self.client.get(f"/checkout/{self.token}") as resp:
            assert resp.status == 200, await resp.text()
            self.csrf = CSRF.search(await resp.text()).group(1)
            self.cookie = resp.cookies["esign_csrf"].value
        session = await self.gateway.create_payment(PaymentRequest(
            order_id="ofuzz0000001", amount_fen=100, currency="CNY", description="fuzz",
            notify_url=f"{BASE}/payments/notify/sandbox", return_url=f"{BASE}/checkout/{self.token}/result"))
        self.payment_id = session.payment_id
        async with self.client.get(f"/sandbox/pay/{self.payment_id}", cookies={"esign_csrf": self.cookie}) as resp:
            assert resp.status == 200, await resp.text()
            self.sandbox_csrf = CSRF.search(await resp.text()).group(1)

    async def close(self) -> None:
        await self.gateway.drain()
        await self.client.close()
        await self.harness.close()
        await self.redis.flushdb()  # tests clean up after themselves
        await self.redis.aclose()


# --- the requests --------------------------------------------------------------------------------

printable = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=40)
anything = st.text(max_size=60)  # odd Unicode, NULs, surrogates excluded by Hypothesis' default
segment = st.one_of(anything.filter(bool), st.sampled_from(["..", ".", "%00", "%2F", "a" * 300, "😀", "—"]))
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | anything,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(anything, inner, max_size=4),
    max_leaves=12,
)


@st.composite
def notice_json(draw) -> dict:
    """Something shaped like a payment notice, fields random: for the correctly signed case."""
    fields = {
        "payment_id": draw(st.one_of(anything, st.just("sbx_x"))),
        "order_id": draw(st.one_of(anything, st.just("ofuzz0000001"))),
        "amount_fen": draw(st.one_of(st.integers(), anything, st.just(100))),
        "currency": draw(st.sampled_from(["CNY", "USD", "", "人民币"])),
        "status": draw(st.sampled_from(["paid", "created", "", "PAID"])),
        "paid_at": draw(st.sampled_from(["2026-01-01T00:00:00Z", "yesterday", "", "9999-99-99"])),
    }
    for name in draw(st.lists(st.sampled_from(sorted(fields)), max_size=3)):
        fields.pop(name, None)
    return fields


@st.composite
def requests(draw, world: World):
    target = draw(st.sampled_from(["checkout", "checkout", "checkout", "notify", "notify", "sandbox",
                                   "webhook", "webhook", "fixed", "random"]))
    odd_method = draw(st.integers(0, 9)) == 0  # mostly the route's own method, sometimes another
    method = draw(st.sampled_from(["GET", "POST", "HEAD", "PUT", "DELETE", "OPTIONS", "PATCH"])) if odd_method else ""
    headers: dict[str, str] = {}
    if draw(st.booleans()):
        headers["Origin"] = draw(st.sampled_from([BASE, "https://evil.example", "null", ""]))
    if draw(st.booleans()):
        headers["Sec-Fetch-Site"] = draw(st.sampled_from(["same-origin", "cross-site", "none", "x"]))
    if draw(st.booleans()):
        headers["Accept-Language"] = draw(st.one_of(printable, st.sampled_from(["en", "zh-CN,zh;q=0.9", "*"])))
    cookies: dict[str, str] = {}
    cookie = draw(st.sampled_from(["ours", "forged", "none", "junk"]))
    if cookie != "none":
        cookies["esign_csrf"] = {"ours": world.cookie, "forged": "0" * 32}.get(cookie) or draw(
            st.text(st.characters(min_codepoint=48, max_codepoint=122), max_size=40))
    data: bytes | dict | None = None
    if target == "checkout":
        token = draw(st.one_of(st.just(world.token), st.just(world.token[:-1] + "A"), segment))
        step = draw(st.one_of(st.sampled_from(STEPS), segment))
        path = f"/checkout/{quote(token, safe='')}" + (f"/{quote(step, safe='')}" if step else "")
        if draw(st.booleans()):
            path += "?" + urlencode(draw(st.dictionaries(printable, printable, max_size=3)))
        form = draw(st.dictionaries(st.one_of(st.sampled_from(FIELDS), printable), anything, max_size=6))
        csrf = draw(st.sampled_from(["ours", "forged", "none"]))
        if csrf != "none":
            form["csrf"] = world.csrf if csrf == "ours" else "f" * 64
        data = form
    elif target == "notify":
        gateway = draw(st.one_of(st.just("sandbox"), segment))
        path = f"/payments/notify/{quote(gateway, safe='')}"
        kind = draw(st.sampled_from(["signed", "json", "bytes", "forged"]))
        body = (json.dumps(draw(notice_json())) if kind == "signed" else json.dumps(draw(json_values))).encode()
        if kind == "bytes":
            body = draw(st.binary(max_size=300))
        stamp = draw(st.one_of(st.just(str(int(world.clock.now().timestamp()))), printable))
        headers[TIMESTAMP_HEADER] = stamp
        headers[SIGNATURE_HEADER] = (sign(NOTICE_KEY, stamp, body) if kind == "signed"
                                     else draw(st.one_of(printable, st.just("0" * 64))))
        headers["Content-Type"] = draw(st.sampled_from(["application/json", "text/plain", "application/x-www-form-urlencoded"]))
        data = body
    elif target == "sandbox":
        pid = draw(st.one_of(st.just(world.payment_id), segment))
        path = f"/sandbox/pay/{quote(pid, safe='')}"
        form = draw(st.dictionaries(st.one_of(st.just("action"), printable), anything, max_size=3))
        if draw(st.booleans()):
            form["action"] = draw(st.sampled_from(["pay", "cancel", "refund", ""]))
        if draw(st.booleans()):
            form["csrf"] = draw(st.sampled_from([world.sandbox_csrf, "f" * 64, ""]))
        data = form
    elif target == "webhook":
        path = WEBHOOK
        secret = draw(st.sampled_from(["right", "wrong", "none"]))
        if secret != "none":
            headers["X-Telegram-Bot-Api-Secret-Token"] = WEBHOOK_SECRET if secret == "right" else "wrong"
        headers["Content-Type"] = "application/json"
        update = draw(st.one_of(json_values, st.fixed_dictionaries(
            {"update_id": st.integers(min_value=-2**63, max_value=2**63)},
            optional={"message": json_values, "callback_query": json_values})))
        data = json.dumps(update).encode() if draw(st.integers(0, 9)) else draw(st.binary(max_size=100))
    elif target == "fixed":
        path = draw(st.sampled_from(["/healthz", "/readyz", "/metrics", "/static/app.css", "/static/../app.py",
                                     "/", "/checkout", "/checkout/", "/sandbox/pay/", "/payments/notify/"]))
    else:
        path = "/" + "/".join(quote(s, safe="") for s in draw(st.lists(segment, min_size=1, max_size=4)))
    if not method:
        method = "GET" if target == "fixed" or (target == "checkout" and path.split("?")[0].endswith(
            (world.token, "/result"))) else draw(st.sampled_from(["GET", "POST", "POST", "POST"]))
    if method in ("GET", "HEAD", "OPTIONS"):
        data = None if draw(st.integers(0, 4)) else data
    return method, path, headers, cookies, data


NOTICE_KEY = NOTIFY_SECRET.encode()


def test_web_endpoints_answer_generated_requests_without_5xx_or_a_logged_exception():
    world = World()
    errors = ErrorLog()
    root = logging.getLogger()
    root.addHandler(errors)
    statuses: dict[int, int] = {}
    started = time.monotonic()
    try:
        @settings(max_examples=EXAMPLES, deadline=None, database=None,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
        @given(st.data())
        def one_request(data) -> None:
            method, path, headers, cookies, body = data.draw(requests(world))
            errors.records.clear()

            async def send() -> int:
                world.client.session.cookie_jar.clear()
                async with world.client.request(method, path, headers=headers, cookies=cookies, data=body,
                                                allow_redirects=False) as resp:
                    await resp.read()
                    return resp.status

            status = world.run(send())
            statuses[status] = statuses.get(status, 0) + 1
            logged = [f"{r.name}: {r.getMessage()} {r.exc_info[1]!r}" if r.exc_info else f"{r.name}: {r.getMessage()}"
                      for r in errors.records]
            assert status < 500, f"{method} {path} -> {status}; logged: {logged}"
            assert not logged, f"{method} {path} -> {status}; logged: {logged}"

        one_request()
    finally:
        root.removeHandler(errors)
        world.run(world.close())
        world.loop.close()
    took = time.monotonic() - started
    print(f"\nweb fuzz: {sum(statuses.values())} requests in {took:.1f} s; statuses {dict(sorted(statuses.items()))}")
    assert sum(statuses.values()) >= EXAMPLES // 2
    assert any(re.match(r"2\d\d", str(s)) for s in statuses), "nothing was ever accepted: the fuzz missed the app"
