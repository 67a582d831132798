"""The browser playground in headless Chromium (Debian's /usr/bin/chromium, driven by Playwright
pointed at that binary; no `playwright install`). Each test drives the page as a person would and
saves a screenshot of the final state under test-artifacts/ (gitignored).

They skip, saying why, when /usr/bin/chromium (or $CHROMIUM_PATH) or the playwright package is
missing — unless REQUIRE_BROWSER_TEST=1 (CI), where that is a failure."""
from __future__ import annotations

import importlib.util
import os
import re
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer
from esign_devkit.webplay.server import (
    FIRST_BUYER_ID,
    WebPlayground,
    build_web_app,
    checkout_web_app,
    with_checkout_origin,
)

from bot.cli.admin import DEMO_ENTERPRISE
from bot.context import AppContext
from config.settings import Settings
from services.orders import OrderStatus
from tests.webplay.conftest import playground_settings
from tests.webplay.glyphs import assert_text_renders

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = Path(os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))
# CI (.ci/run) sets REQUIRE_BROWSER_TEST=1: there a missing browser is a failure, not a skip.
REQUIRED = os.environ.get("REQUIRE_BROWSER_TEST") == "1"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync"]
BUYER = FIRST_BUYER_ID
TIMEOUT_MS = 15_000


def _why_no_browser() -> str | None:
    if not CHROMIUM.exists():
        return f"no Chromium at {CHROMIUM}: install Debian's package (apt-get install -y chromium) to run the browser tests"
    if importlib.util.find_spec("playwright") is None:
        return f"the playwright package is missing: pip install playwright (no `playwright install`: {CHROMIUM} is used)"
    return None


pytestmark = pytest.mark.skipif(_why_no_browser() is not None and not REQUIRED, reason=_why_no_browser() or "")


def _why_no_hand_off() -> str | None:
    if "staff_chat_id" not in Settings.model_fields or "support" not in AppContext.__dataclass_fields__:
        return ("the bot has no staff group: the customer-service hand-off (Settings.staff_chat_id, "
                "AppContext.support) is not in this build yet")
    return None


def expect(target):
    from playwright.async_api import expect as playwright_expect

    playwright_expect.set_options(timeout=TIMEOUT_MS)  # generous: the machine may be busy
    return playwright_expect(target)


@pytest.fixture
async def browser():
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        await chromium.close()


async def open_page(browser, url: str, *, width: int = 1600, height: int = 1000, mobile: bool = False):
    context = await browser.new_context(viewport={"width": width, "height": height}, locale="zh-CN",
                                        is_mobile=mobile, has_touch=mobile, device_scale_factor=2 if mobile else 1)
    context.set_default_timeout(TIMEOUT_MS)
    page = await context.new_page()
    page.script_errors = []
    page.on("pageerror", lambda error: page.script_errors.append(str(error)))
    await page.goto(url)
    return page


@pytest.fixture
async def page(browser, server):
    page = await open_page(browser, str(server.make_url("/")))
    yield page
    errors = page.script_errors
    await page.context.close()
    assert errors == [], f"the page's script failed: {errors}"


async def screenshot(page, name: str) -> Path:
    """Save the page as a picture, which must be readable: Chinese and emoji drawn, not boxes."""
    await assert_text_renders(page)
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    await page.mouse.move(0, 0)  # no hover effects in the picture
    await page.screenshot(path=str(path), animations="disabled")
    assert path.stat().st_size > 10_000
    return path


class Chat:
    """A buyer's pane, driven through the page."""

    def __init__(self, page, buyer_id: int = BUYER) -> None:
        self.page = page
        self.pane = page.locator(f'[data-buyer="{buyer_id}"]')

    @property
    def bot_messages(self):
        return self.pane.locator(".history .msg.them")

    async def start(self) -> None:
        await self.pane.locator("button.start").click()
        await expect(self.bot_messages.first).to_be_visible()

    async def tap(self, label: str | re.Pattern[str]) -> None:
        await self.pane.locator(".ikb-btn", has_text=label).last.click()

    async def type(self, text: str) -> None:
        box = self.pane.locator(".composer .input")
        await box.fill(text)
        await box.press("Enter")

    async def expect(self, text: str | re.Pattern[str]) -> None:
        """The bot's latest message shows this text."""
        await expect(self.bot_messages.last).to_contain_text(text)


# 立即购买 alone: each value-added service's button on 购买套餐 ends with it too.
BUY_NOW = re.compile("^立即购买$")


async def test_F2_F5_a_whole_advanced_purchase_in_the_browser(page, playground):
    chat = Chat(page)
    await chat.start()
    assert await chat.bot_messages.count() == 1

    await chat.tap("购买套餐")
    await chat.expect("高级版：¥4,800.00/年")
    assert await chat.bot_messages.count() == 1                       # edited in place
    await expect(chat.bot_messages.last.locator(".edited")).to_have_text("已编辑")

    await chat.tap(BUY_NOW)
    await chat.tap(re.compile("^高级版"))
    await chat.tap(re.compile("^2年"))
    await chat.tap(re.compile("^合同加量包 1千份"))
    await chat.expect("产品选购")
    await chat.tap(BUY_NOW)
    await chat.expect("企业名称")
    await chat.type(DEMO_ENTERPRISE)
    await chat.expect("验证手机号")

    await chat.pane.locator(".rkb-btn", has_text="分享我的手机号").click()  # the reply keyboard
    dialog = page.locator("#contact-dialog")
    await expect(dialog.locator("input[name=phone]")).to_have_value("+8613800138000")
    await dialog.locator(".contact-confirm").click()
    await chat.expect("验证码已发送至")

    sms = page.locator(f'#sms .sms-item[data-buyer="{BUYER}"]').first     # the SMS panel
    code = (await sms.locator(".code").text_content() or "").strip()
    assert re.fullmatch(r"\d{6}", code), code
    await chat.type(code)
    await chat.expect("订单确认")
    await chat.expect("合计：¥13,600.00")

    await chat.tap("提交订单")
    invoice = chat.pane.locator(".msg.has-invoice").last
    await expect(invoice).to_contain_text("¥13,600.00")
    await invoice.locator(".ikb-btn.pay").click()
    pay = page.locator("#pay-dialog")
    await expect(pay.locator(".pay-amount")).to_have_text("¥13,600.00")
    await pay.locator(".pay-confirm").click()
    await chat.expect("支付成功")
    await expect(invoice.locator(".ikb-btn.paid")).to_contain_text("已支付")

    # The demo phone administers the verified demo enterprise: delivered at payment, nothing to bind (R19).
    await chat.expect(DEMO_ENTERPRISE)
    await chat.tap("首页")
    await chat.expect("当前版本：高级版")
    await chat.expect("合同余量：2,200 份")
    await expect(page.locator("#enterprises")).to_contain_text("高级版")

    [order] = await playground.app.orders.list_for_user(BUYER)
    assert order.status is OrderStatus.BOUND
    await screenshot(page, "webplay_advanced_purchase.png")


async def test_F1_a_second_buyer_side_by_side_in_english(page):
    await Chat(page).start()
    await page.locator("#add-buyer").click()
    dialog = page.locator("#buyer-dialog")
    await dialog.locator("select[name=lang]").select_option("en")
    await dialog.locator("input[name=name]").fill("Alice")
    await dialog.locator("input[name=name]").press("Enter")           # Enter confirms the dialog
    await expect(dialog).to_be_hidden()

    alice = Chat(page, BUYER + 1)
    await expect(alice.pane.locator(".chat-head .sub")).to_contain_text("Alice")
    await alice.start()
    await alice.expect("Welcome to Tencent E-Sign")
    await alice.tap("Buy a plan")
    await alice.expect("Advanced")
    await Chat(page).expect("欢迎使用腾讯电子签")                         # the first chat is untouched
    await expect(page.locator("#tabs .tab")).to_have_count(4)          # two buyers, staff, SMS
    await screenshot(page, "webplay_two_buyers.png")


async def test_F1_the_page_fits_a_phone_one_pane_at_a_time(browser, server):
    page = await open_page(browser, str(server.make_url("/")), width=390, height=844, mobile=True)
    try:
        chat = Chat(page)
        await chat.start()
        await chat.tap("购买套餐")
        await chat.expect("立即购买")
        await expect(page.locator("#staff")).to_be_hidden()
        await expect(page.locator("#side")).to_be_hidden()
        width = await page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"the page is {width}px wide on a 390px phone"
        await screenshot(page, "webplay_phone_chat.png")

        await page.locator("#tabs .tab", has_text="短信").click()
        await expect(page.locator("#side")).to_be_visible()
        await expect(chat.pane).to_be_hidden()
        await page.locator("#tabs .tab", has_text="客服群").click()
        await expect(page.locator("#staff")).to_be_visible()
        # The staff pane says honestly whether the hand-off works the group in this build.
        await expect(page.locator("#staff")).to_contain_text(re.compile("客服转接|还没有话题"))
        assert page.script_errors == []
    finally:
        await page.context.close()


async def test_F12_web_checkout_links_open_in_a_new_tab(browser, redis, clock):
    """网页端购买 is a plain link: the page opens it in a new tab, on the web checkout the
    playground serves next to itself (bot/web) when this build has one."""
    from tests.webplay.test_api import _free_port

    checkout_port = _free_port()
    settings = with_checkout_origin(playground_settings(), f"http://127.0.0.1:{checkout_port}")
    world = await WebPlayground.create(settings, redis, clock=clock)
    checkout_app = checkout_web_app(world)
    servers = [TestServer(build_web_app(world), host="127.0.0.1")]
    if checkout_app is not None:
        servers.append(TestServer(checkout_app, host="127.0.0.1", port=checkout_port))
    for test_server in servers:
        await test_server.start_server()
    page = await open_page(browser, str(servers[0].make_url("/")))
    try:
        chat = Chat(page)
        await chat.start()
        await chat.tap("购买套餐")
        await chat.tap(BUY_NOW)
        await chat.tap(re.compile("^旗舰版"))
        link = chat.pane.locator("a.ikb-btn", has_text="网页端购买").last
        await expect(link).to_have_attribute("target", "_blank")
        href = await link.get_attribute("href")
        async with page.context.expect_page() as opened:
            await link.click()
        tab = await opened.value
        assert tab.url == href
        assert page.script_errors == []
        if checkout_app is None:
            pytest.skip("this build has no web checkout (bot/web): the link opened, nothing serves it")
        assert href.startswith(f"http://127.0.0.1:{checkout_port}/")
        await tab.wait_for_load_state()
        await expect(tab.locator("body")).to_contain_text("旗舰版")
        await screenshot(tab, "webplay_web_checkout_tab.png")
    finally:
        await page.context.close()
        for test_server in servers:
            await test_server.close()
        await world.close()


@pytest.mark.skipif(_why_no_hand_off() is not None, reason=_why_no_hand_off() or "")
async def test_F11_a_consultation_through_the_page(page, playground):
    """A 旗舰版 buyer presses 购买咨询; their topic and intake card appear in the staff pane; an
    agent answers in the topic and the buyer reads it; the buyer's answer reaches the topic."""
    assert playground.staff_chat_id is not None
    chat = Chat(page)
    await chat.start()
    await chat.tap("购买套餐")
    await chat.tap(BUY_NOW)
    await chat.tap(re.compile("^旗舰版"))
    await chat.tap("购买咨询")

    topic = page.locator('#topics .topic:not([data-thread="general"])').first
    await expect(topic).to_be_visible()
    await topic.click()
    staff_history = page.locator("#staff-history")
    await expect(staff_history).to_contain_text("旗舰版")                 # the intake card
    claim = staff_history.locator(".ikb-btn", has_text=re.compile("认领|接单|接待|claim", re.I))
    if await claim.count():
        async with page.expect_response(lambda response: response.url.endswith("/press")):
            await claim.last.click()

    composer = page.locator("#staff-composer .input")
    await composer.fill("您好，我是客服小李。请问需要购买几年？")
    await composer.press("Enter")
    await chat.expect("请问需要购买几年")                                 # relayed to the buyer

    await chat.type("三年，谢谢")
    await expect(staff_history).to_contain_text("三年，谢谢")              # relayed to the topic
    await screenshot(page, "webplay_consultation.png")
