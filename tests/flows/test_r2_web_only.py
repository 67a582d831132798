"""R2 / F4: 专业版 and 旗舰版, and any cart over the chat payment limit, are never paid in chat:
the buyer is offered 购买咨询 and a 网页端购买 link, and no invoice is ever sent."""
import re

import pytest
from esign_devkit.testing.harness import BotHarness

from services.catalog import load_catalog
from tests.flows.steps import ADVANCED, FLAGSHIP, NO_PACK, PROFESSIONAL, to_editions, years_button

# F12: 网页端购买 is a checkout link for the cart, <PUBLIC_BASE_URL>/checkout/<token> (tests/web).
WEB_URL = re.compile(r"http://127\.0\.0\.1:8080/checkout/[A-Za-z0-9_-]{32}")


def web_buy_url(buyer) -> str | None:
    message = buyer.telegram.last_message(buyer.id)
    buttons = [b for row in message["reply_markup"]["inline_keyboard"] for b in row]
    return next((b.get("url") for b in buttons if b["text"] == "网页端购买"), None)


@pytest.mark.parametrize("edition, name", [(PROFESSIONAL, "专业版"), (FLAGSHIP, "旗舰版")])
async def test_R2_professional_and_flagship_are_refused_in_chat(esign_harness, edition, name):
    buyer = esign_harness.user()
    await to_editions(buyer)

    screen = await buyer.tap(edition)

    assert f"{name}无法在聊天中支付" in screen.text
    assert "购买咨询" in screen.text and WEB_URL.search(screen.text)
    assert "购买咨询" in screen.buttons
    assert "网页端购买" in screen.buttons
    assert WEB_URL.fullmatch(web_buy_url(buyer)) and web_buy_url(buyer) in screen.text
    assert not any(b.startswith("1年") for b in screen.buttons)  # no way on to years or payment
    assert esign_harness.telegram.calls_of("sendInvoice") == []
    assert await esign_harness.state_of(buyer) == "Buy:web_only"

    screen = await buyer.tap("购买咨询")
    assert "联系客服" in screen.text
    assert esign_harness.telegram.calls_of("sendInvoice") == []
    assert await esign_harness.orders.list_for_user(buyer.id) == []


async def test_R2_choose_other_edition_from_web_only_goes_back_to_the_editions(esign_harness):
    buyer = esign_harness.user()
    await to_editions(buyer)
    await buyer.tap(PROFESSIONAL)

    screen = await buyer.tap("重新选择版本")
    assert "版本选购" in screen.text
    screen = await buyer.tap(ADVANCED)
    assert "请选择购买时长" in screen.text


async def test_R2_catalog_says_only_advanced_is_sold_in_chat(esign_harness):
    buyer = esign_harness.user()
    await buyer.send("/start")
    screen = await buyer.tap("购买套餐")
    assert "在本聊天中只能支付高级版订单，单笔不超过 ¥50,000.00" in screen.text


@pytest.fixture
async def small_limit_harness(redis, clock):
    """The chat limit lowered to ¥10,000: 高级版 for 3 years (¥14,400) is over it."""
    catalog = load_catalog().model_copy(update={"chat_payment_limit_fen": 1_000_000})
    harness = BotHarness(redis, clock=clock, catalog=catalog)
    yield harness
    assert harness.unanswered_queries() == []
    await harness.close()


async def test_R2_cart_over_the_chat_limit_is_refused_with_consultation_and_web_link(small_limit_harness):
    harness = small_limit_harness
    buyer = harness.user()
    await to_editions(buyer)
    await buyer.tap(ADVANCED)
    await buyer.tap(years_button(3))

    screen = await buyer.tap(NO_PACK)

    assert "订单总额 ¥14,400.00 超过聊天内单笔支付上限 ¥10,000.00" in screen.text
    assert WEB_URL.search(screen.text)
    assert {"购买咨询", "网页端购买"} <= set(screen.buttons)
    assert WEB_URL.fullmatch(web_buy_url(buyer)) and web_buy_url(buyer) in screen.text
    assert await harness.state_of(buyer) == "Buy:web_only"
    assert harness.telegram.calls_of("sendInvoice") == []
    assert harness.sms.gateway.outbox == []  # not even a phone verification


async def test_R2_cart_pushed_over_the_limit_by_an_addon_pack_is_refused(small_limit_harness):
    harness = small_limit_harness
    buyer = harness.user()
    await to_editions(buyer)
    await buyer.tap(ADVANCED)
    await buyer.tap(years_button(2))  # ¥9,600: under the limit on its own

    screen = await buyer.tap("合同加量包 1千份 · +¥4,000.00")

    assert "订单总额 ¥13,600.00 超过聊天内单笔支付上限" in screen.text
    assert harness.telegram.calls_of("sendInvoice") == []


async def test_R2_cart_under_the_lowered_limit_is_still_sold_in_chat(small_limit_harness):
    harness = small_limit_harness
    buyer = harness.user()
    await to_editions(buyer)
    await buyer.tap(ADVANCED)
    await buyer.tap(years_button(2))
    screen = await buyer.tap(NO_PACK)
    assert "产品选购" in screen.text and "立即购买" in screen.buttons
    screen = await buyer.tap("立即购买")
    assert "企业名称" in screen.text
    assert await harness.state_of(buyer) == "Buy:enterprise_name"


async def test_R2_web_only_survives_the_limit_being_checked_again_at_submit(small_limit_harness, redis, clock):
    """A cart confirmed under one limit and submitted after the limit dropped is not invoiced."""
    harness = small_limit_harness
    buyer = harness.user()
    await to_editions(buyer)
    await buyer.tap(ADVANCED)
    await buyer.tap(years_button(1))
    await buyer.tap(NO_PACK)
    await buyer.tap("立即购买")
    await buyer.send("深圳示例科技有限公司")
    await buyer.share_contact()
    await buyer.send(harness.sms.last_code(buyer.phone))
    assert await harness.state_of(buyer) == "Buy:confirm"

    harness.catalog = harness.catalog.model_copy(update={"chat_payment_limit_fen": 100_000})
    harness.restart()  # a new process with the new limit
    screen = await buyer.tap("提交订单")

    assert "超过聊天内单笔支付上限 ¥1,000.00" in screen.text
    assert harness.telegram.calls_of("sendInvoice") == []
    assert await harness.orders.list_for_user(buyer.id) == []
