"""The browser playground's page as a reader meets it: every time on it is Beijing time and says
so, whatever the browser's own zone; Chinese and emoji draw as themselves, not as boxes (this
fails on a machine without CJK and emoji fonts, which scripts/test.sh installs); and the
screenshot it leaves is readable."""
from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from tests.webplay.glyphs import assert_text_renders
from tests.webplay.test_browser import (
    BUYER,
    CHROMIUM,
    CHROMIUM_ARGS,
    REQUIRED,
    TIMEOUT_MS,
    Chat,
    _why_no_browser,
    expect,
    screenshot,
)

pytestmark = pytest.mark.skipif(_why_no_browser() is not None and not REQUIRED, reason=_why_no_browser() or "")


@pytest.fixture
async def new_york_page(server):
    """The page in a browser whose own zone is New York (13 hours behind Beijing in January)."""
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        context = await browser.new_context(viewport={"width": 1600, "height": 1000}, locale="zh-CN",
                                            timezone_id="America/New_York")
        context.set_default_timeout(TIMEOUT_MS)
        page = await context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        await page.goto(str(server.make_url("/")))
        yield page
        await context.close()
        await browser.close()
        assert errors == [], f"the page's script failed: {errors}"


async def test_chat_times_are_beijing_time_and_the_page_says_so(new_york_page, playground):
    page = new_york_page
    assert await page.evaluate("Intl.DateTimeFormat().resolvedOptions().timeZone") == "America/New_York"
    chat = Chat(page)
    await chat.start()
    await expect(page.locator("#tz")).to_contain_text("北京时间")

    sent = playground.telegram.last_message(BUYER, from_bot=True)
    beijing = datetime.fromtimestamp(sent["date"], UTC).astimezone(ZoneInfo("Asia/Shanghai")).strftime("%H:%M")
    shown = await chat.bot_messages.last.locator(".time").text_content()
    assert shown == beijing, f"the chat shows {shown}, Beijing time is {beijing}"
    assert await chat.bot_messages.last.locator(".time").get_attribute("title") == "北京时间 Beijing time (UTC+8)"


async def test_chinese_and_emoji_render_and_the_screenshot_is_readable(new_york_page, playground):
    page = new_york_page
    chat = Chat(page)
    await chat.start()
    await chat.tap("购买套餐")
    await assert_text_renders(page)
    await screenshot(page, "webplay_glyphs.png")
