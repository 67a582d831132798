"""The web checkout over HTTP (F12): the production web app (bot.web.build_web_app) on a real
socket, the production dispatcher behind the fake Telegram (esign_harness), real Redis, the
sandbox gateway posting its signed notices over HTTP to the app's notify endpoint."""
from __future__ import annotations

import re
import socket
from dataclasses import dataclass
from html import unescape
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from esign_devkit.testing.fake_alipay import FakeAlipay
from esign_devkit.testing.fake_wechat_pay import FakeWechatPay
from esign_devkit.testing.harness import BotHarness, ChatUser

from bot.web import build_web_app
from bot.web.security import RedactingAccessLogger
from config.settings import Settings
from services.payment_gateway import SandboxGateway
from tests.flows.steps import PROFESSIONAL, to_editions

NOTIFY_SECRET = "notify-test-secret"
CSRF = re.compile(r'name="csrf" value="([0-9a-f]{64})"')
TAGS = re.compile(r"<[^>]+>")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def web_settings(base: str, **overrides: Any) -> Settings:
    return Settings(_env_file=None, bot_token=None, code_secret="test-secret", public_base_url=base,
                    payment_notify_secret=NOTIFY_SECRET, **overrides)


@dataclass
class Page:
    status: int
    html: str
    headers: Any
    url: str

    @property
    def text(self) -> str:
        """The visible text, tags removed, whitespace squeezed."""
        return " ".join(unescape(TAGS.sub(" ", self.html)).split())

    @property
    def csrf(self) -> str:
        match = CSRF.search(self.html)
        assert match, f"no CSRF field on the page:\n{self.text}"
        return match.group(1)

    @property
    def location(self) -> str:
        return self.headers.get("Location", "")


class WebWorld:
    def __init__(self, harness: BotHarness, client: TestClient, base: str, gateway: Any) -> None:
        self.harness = harness
        self.client = client
        self.base = base
        self.gateway = gateway  # the default gateway: the sandbox, or a provider's adapter
        self.last: Page | None = None
        self.wechat: FakeWechatPay | None = None  # the local providers, when the world uses them
        self.alipay: FakeAlipay | None = None

    def path(self, url: str) -> str:
        return url.removeprefix(self.base)

    async def get(self, url: str, **kwargs: Any) -> Page:
        async with self.client.get(self.path(url), allow_redirects=False, **kwargs) as resp:
            page = Page(resp.status, await resp.text(), resp.headers, str(resp.url))
        self.last = page
        return page

    async def post(self, url: str, data: dict[str, str] | None = None, *, csrf: str | None = None,
                   headers: dict[str, str] | None = None) -> Page:
        """A form post, with the CSRF token of the last page unless one is given ("" for none)."""
        form = dict(data or {})
        token = csrf if csrf is not None else (self.last.csrf if self.last else "")
        if token:
            form["csrf"] = token
        async with self.client.post(self.path(url), data=form, allow_redirects=False,
                                    headers={"Origin": self.base, **(headers or {})}) as resp:
            page = Page(resp.status, await resp.text(), resp.headers, str(resp.url))
        return page

    async def follow(self, page: Page) -> Page:
        assert page.status == 303, f"expected a redirect, got {page.status}:\n{page.text}"
        return await self.get(page.location)

    async def chat_link(self, buyer: ChatUser, edition=PROFESSIONAL) -> str:
        """The buyer picks an edition the chat cannot take (R2); the 网页端购买 link."""
        await to_editions(buyer)
        await buyer.tap(edition)
        return web_buy_url(buyer)

    async def post_notice(self, body: bytes, headers: dict[str, str], gateway: str = "sandbox") -> tuple[int, str]:
        async with self.client.post(f"/payments/notify/{gateway}", data=body,
                                    headers={**headers, "Content-Type": "application/json"}) as resp:
            return resp.status, await resp.text()


def web_buy_url(buyer: ChatUser) -> str:
    message = buyer.telegram.last_message(buyer.id)
    for row in message["reply_markup"]["inline_keyboard"]:
        for button in row:
            if button["text"] in ("网页端购买", "Buy on the web"):
                return button.get("url") or button["web_app"]["url"]
    raise AssertionError(f"no 网页端购买 button on the screen:\n{buyer.screen}")


async def start_world(redis, clock, **settings_overrides: Any) -> tuple[WebWorld, TestClient]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    gateway = SandboxGateway(redis, clock, NOTIFY_SECRET.encode(), pay_base_url=base, retry_delays=(0.05, 0.1))
    harness = BotHarness(redis, clock=clock, settings=web_settings(base, **settings_overrides), gateway=gateway)
    app = build_web_app(harness.app, harness.bot, harness.dp)
    server = TestServer(app, host="127.0.0.1", port=port)
    await server.start_server(access_log_class=RedactingAccessLogger)  # as bot.runtime.runner serves it
    client = TestClient(server)
    await client.start_server()
    return WebWorld(harness, client, base, gateway), client


FAST_RETRIES = (0.05, 0.1, 0.2)  # the providers' hours of retries, compressed


async def start_provider_world(redis, clock, providers: str, **settings_overrides: Any) -> tuple[WebWorld, TestClient]:
    """The web app with real provider adapters (WEB_GATEWAY=`providers`) talking over HTTP to
    the local fake WeChat Pay and Alipay, whose keys are made now."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    names = providers.split(",")
    fakes: dict[str, Any] = {}
    if "wechat" in names:
        fakes["wechat"] = FakeWechatPay(clock=clock, retry_schedule=FAST_RETRIES)
        await fakes["wechat"].start()
        settings_overrides.update(fakes["wechat"].merchant_settings())
    if "alipay" in names:
        fakes["alipay"] = FakeAlipay(clock=clock, retry_schedule=FAST_RETRIES)
        await fakes["alipay"].start()
        settings_overrides.update(fakes["alipay"].app_settings())
    harness = BotHarness(redis, clock=clock, settings=web_settings(base, web_gateway=providers, **settings_overrides))
    app = build_web_app(harness.app, harness.bot, harness.dp)
    server = TestServer(app, host="127.0.0.1", port=port)
    await server.start_server(access_log_class=RedactingAccessLogger)
    client = TestClient(server)
    await client.start_server()
    world = WebWorld(harness, client, base, harness.app.gateway)
    world.wechat, world.alipay = fakes.get("wechat"), fakes.get("alipay")
    return world, client


async def stop_provider_world(world: WebWorld, client: TestClient) -> None:
    for fake in (world.wechat, world.alipay):
        if fake is not None:
            await fake.notices.drain()
            await fake.close()
    await client.close()
    await world.harness.close()


@pytest.fixture
async def provider_world(redis, clock):
    """`await provider_world("wechat")` (or "alipay", "wechat,alipay"): one world per test."""
    made: list[tuple[WebWorld, TestClient]] = []

    async def make(providers: str, **settings_overrides: Any) -> WebWorld:
        world, client = await start_provider_world(redis, clock, providers, **settings_overrides)
        made.append((world, client))
        return world

    yield make
    for world, client in made:
        await stop_provider_world(world, client)


@pytest.fixture
async def web_world(redis, clock):
    world, client = await start_world(redis, clock)
    yield world
    await world.gateway.drain()
    await client.close()
    await world.harness.close()
