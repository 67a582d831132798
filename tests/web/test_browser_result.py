"""The web checkout's result page after payment: 立即绑定 is asked for only while there is
something to bind (R12); an order delivered with its payment (R19) or bound since just goes back
to the chat. In the browser playground 返回聊天 goes to the playground's own page, never to a
t.me bot of the fake Telegram's name. In a real browser the page's Chinese renders (no boxes)."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer
from esign_devkit.webplay.server import WebPlayground, checkout_web_app, with_checkout_origin

from services.orders import OrderStatus
from tests.flows.steps import ENTERPRISE_NAME
from tests.web.conftest import WebWorld
from tests.web.test_browser import CHROMIUM, CHROMIUM_ARGS, async_api
from tests.web.test_checkout_enterprise import verified_as_enterprise
from tests.web.test_checkout_http import buy_professional_on_the_web, pay_in_sandbox
from tests.webplay.conftest import playground_settings
from tests.webplay.glyphs import assert_text_renders

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "web"
BACK = re.compile(r'<a class="button [a-z]+" href="([^"]+)">([^<]+)</a>')


def back_link(html: str) -> tuple[str, str]:
    found = BACK.findall(html)
    assert found, "no link back to the chat on the page"
    return found[-1]


async def delivered_result(w: WebWorld) -> str:
    """A 旗舰版 upgrade bought on the web by the super admin of a verified enterprise: delivered
    with its payment (R19). Returns the result page's URL."""
    _ent, buyer, url = await verified_as_enterprise(w, "flagship", on="advanced")
    submitted = await w.post(f"{url}/submit", {})
    result = await pay_in_sandbox(w, submitted.location)
    assert (await w.harness.last_order(buyer)).status is OrderStatus.BOUND
    return result


async def test_R19_a_delivered_order_goes_back_to_the_chat_without_asking_to_bind(web_world):
    w = web_world
    page = await w.get(await delivered_result(w))
    assert "支付成功" in page.text and f"已自动发货至「{ENTERPRISE_NAME}」" in page.text
    assert "立即绑定" not in page.text
    assert back_link(page.html)[1] == "返回聊天"


async def test_R12_a_paid_order_asks_to_bind_until_it_is_bound(web_world):
    w = web_world
    h = w.harness
    buyer = h.user()
    _url, cashier = await buy_professional_on_the_web(w, buyer)
    result = await pay_in_sandbox(w, cashier)
    page = await w.get(result)
    assert back_link(page.html)[1] == "返回聊天立即绑定"  # paid, nothing bound yet

    await h.enterprise(ENTERPRISE_NAME, members={buyer.phone: "super_admin"})
    await buyer.tap("立即绑定")
    await buyer.tap(ENTERPRISE_NAME)
    await buyer.tap("确认绑定")
    await h.expect_order(buyer, "bound")
    page = await w.get(result)
    assert "立即绑定" not in page.text and back_link(page.html)[1] == "返回聊天"


async def test_F12_the_playground_s_back_to_chat_is_its_own_page(redis, clock):
    checkout_base = "http://127.0.0.1:18081"
    world = await WebPlayground.create(with_checkout_origin(playground_settings(), checkout_base), redis, clock=clock)
    checkout = checkout_web_app(world, chat_page="http://127.0.0.1:18080/")
    assert checkout is not None
    server = TestServer(checkout, host="127.0.0.1")
    await server.start_server()
    try:
        import aiohttp

        link = await world.app.checkout.link_for_order(await _an_order(world), lang="zh")
        # The link names the playground's checkout origin; this test server stands in for it.
        result = server.make_url(link.removeprefix(checkout_base) + "/result")
        async with aiohttp.ClientSession() as http, http.get(str(result)) as resp:
            html = await resp.text()
        assert "t.me" not in html
        assert back_link(html) == ("http://127.0.0.1:18080/", "返回聊天")
    finally:
        await server.close()
        await world.close()


async def _an_order(world: WebPlayground):
    from services.catalog import Cart, quote
    from services.orders import Channel

    order, _ = await world.app.orders.create(
        user_id=10001, chat_id=10001, cart_id="c1", channel=Channel.WEB,
        quote=quote(world.app.catalog, Cart(edition="professional", years=1, pack=None, pack_chosen=True)))
    return order


@pytest.mark.skipif(not CHROMIUM.exists(), reason=f"no Chromium at {CHROMIUM} (apt-get install chromium)")
async def test_R19_the_delivered_result_in_a_browser_reads_as_chinese(web_world):
    result = await delivered_result(web_world)
    async with async_api.async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            context = await browser.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN")
            page = await context.new_page()
            await page.goto(result)
            await async_api.expect(page.get_by_role("link", name="返回聊天", exact=True)).to_be_visible()
            assert await page.get_by_text("立即绑定").count() == 0
            await assert_text_renders(page)
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            await page.screenshot(path=str(ARTIFACTS / "zh-result-delivered.png"), full_page=True)
        finally:
            await browser.close()
