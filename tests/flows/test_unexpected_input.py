"""Bad input never crashes and never loses the cart (DESIGN, Conventions): text where a button
is expected re-shows the same step with a hint, and the step after still works. Media where
text is expected is refused the same way."""
import re

import pytest

from tests.flows.steps import (
    ADVANCED,
    ENTERPRISE_NAME,
    NO_PACK,
    at_bind_choose,
    at_bind_confirm,
    at_catalog,
    at_confirmation,
    at_editions,
    at_home,
    at_my_orders,
    at_order_details,
    at_pack,
    at_payment,
    at_review,
    at_web_only,
    at_years,
    to_code,
    to_enterprise_name,
    to_payment,
    to_phone,
    years_button,
)

HINT = "请使用下方按钮进行选择。"
TEXT_ONLY = "请输入文字。"


async def next_works(h, buyer, label, expected):
    screen = await buyer.tap(label)
    assert expected in screen.text, screen


async def pay_works(h, buyer, *_):
    screen = await buyer.pay()
    assert "支付成功" in screen.text


async def pay_from_details_works(h, buyer, *_):
    await buyer.tap("去支付")
    assert len(buyer.telegram.invoices(buyer.id)) == 2  # a fresh invoice for the same order
    screen = await buyer.pay()
    assert "支付成功" in screen.text


async def submit_works(h, buyer, *_):
    await buyer.tap("提交订单")
    [order] = await h.orders.list_for_user(buyer.id)
    assert buyer.last_invoice()["payload"] == order.id
    assert order.lines[0].quantity == 1


STEPS = {
    # step: (walk there, screen marker, stored state, the next step and what it shows)
    "home": (at_home, "欢迎使用腾讯电子签", None, ("购买套餐", "高级版：¥4,800.00/年")),
    "catalog": (at_catalog, "📦 购买套餐", "Menu:catalog", ("立即购买", "版本选购")),
    "editions": (at_editions, "版本选购", "Buy:edition", (ADVANCED, "请选择购买时长")),
    "years": (at_years, "请选择购买时长", "Buy:years", (years_button(3), "高级版 3年")),
    "pack": (at_pack, "高级版 2年\n是否加购合同加量包", "Buy:pack", (NO_PACK, "产品选购")),
    "review": (at_review, "产品选购", "Buy:review", ("立即购买", "企业名称")),
    "web_only": (at_web_only, "专业版无法在聊天中支付", "Buy:web_only", ("重新选择版本", "版本选购")),
    "confirmation": (at_confirmation, "订单确认", "Buy:confirm", submit_works),
    "payment": (at_payment, "已提交，应付 ¥4,800.00", "Buy:payment", pay_works),
    "my_orders": (at_my_orders, "📋 我的订单", "Orders:list", (re.compile("^高级版 1年"), "订单详情")),
    "order_details": (at_order_details, "订单详情", "Orders:detail", pay_from_details_works),
    "bind_choose": (at_bind_choose, "请选择要将订单", "Bind:choose", (ENTERPRISE_NAME, "确认将订单")),
    "bind_confirm": (at_bind_confirm, "确认将订单", "Bind:confirm", ("确认绑定", "绑定成功")),
}


@pytest.mark.parametrize("step", list(STEPS))
@pytest.mark.parametrize("text", ["随便说点什么", "/help"])
async def test_unexpected_text_reshows_the_step_with_a_hint(esign_harness, step, text):
    walk, marker, state, after = STEPS[step]
    buyer = esign_harness.user()
    await walk(esign_harness, buyer)
    before = await esign_harness.session_of(buyer)
    orders_before = await esign_harness.orders.list_for_user(buyer.id)

    screen = await buyer.send(text)

    assert screen.text.startswith(HINT), screen
    assert marker in screen.text, screen
    assert await esign_harness.state_of(buyer) == state
    assert await esign_harness.session_of(buyer) == before  # nothing lost, nothing changed
    assert await esign_harness.orders.list_for_user(buyer.id) == orders_before
    if callable(after):
        await after(esign_harness, buyer)
    else:
        await next_works(esign_harness, buyer, *after)


@pytest.mark.parametrize("step", list(STEPS))
async def test_unexpected_sticker_at_a_button_step_reshows_the_step(esign_harness, step):
    walk, marker, state, _ = STEPS[step]
    buyer = esign_harness.user()
    await walk(esign_harness, buyer)
    screen = await buyer.send_sticker()
    assert screen.text.startswith(HINT) and marker in screen.text, screen
    assert await esign_harness.state_of(buyer) == state


TEXT_STEPS = {
    "enterprise_name": (to_enterprise_name, "企业名称", "Buy:enterprise_name", ENTERPRISE_NAME, "验证手机号"),
    "phone_number": (to_phone, "验证手机号", "Phone:number", "13800138000", "验证码已发送至"),
    "phone_code": (to_code, "验证码已发送至", "Phone:code", None, "订单确认"),
}


@pytest.mark.parametrize("step", list(TEXT_STEPS))
@pytest.mark.parametrize("media", ["sticker", "photo", "photo with caption"])
async def test_media_at_a_text_step_asks_for_text_and_keeps_the_step(esign_harness, step, media):
    walk, marker, state, good_input, after = TEXT_STEPS[step]
    buyer = esign_harness.user()
    await walk(buyer)
    before = await esign_harness.session_of(buyer)

    if media == "sticker":
        screen = await buyer.send_sticker()
    elif media == "photo":
        screen = await buyer.send_photo()
    else:
        screen = await buyer.send_photo(caption=good_input or esign_harness.sms.last_code(buyer.phone))

    assert screen.text.startswith(TEXT_ONLY), screen
    assert marker in screen.text
    assert await esign_harness.state_of(buyer) == state
    assert await esign_harness.session_of(buyer) == before
    screen = await buyer.send(good_input or esign_harness.sms.last_code(buyer.phone))
    assert after in screen.text


@pytest.mark.parametrize("name", ["a", "   ", "!!!", "/cancel", "x" * 51])
async def test_bad_enterprise_name_is_explained_and_asked_again(esign_harness, name):
    buyer = esign_harness.user()
    await to_enterprise_name(buyer)
    screen = await buyer.send(name)
    assert "企业名称需为 2–50 个字符" in screen.text
    assert "企业名称" in screen.text
    assert await esign_harness.state_of(buyer) == "Buy:enterprise_name"
    screen = await buyer.send(ENTERPRISE_NAME)
    assert "验证手机号" in screen.text


async def test_enterprise_name_is_asked_once_and_reused_for_the_next_purchase(esign_harness):
    buyer = esign_harness.user()
    await to_payment(esign_harness, buyer)
    await buyer.send("/start")
    await buyer.tap("购买套餐")
    await buyer.tap("立即购买")
    await buyer.tap(ADVANCED)
    await buyer.tap(years_button(2))
    await buyer.tap(NO_PACK)
    screen = await buyer.tap("立即购买")
    assert "订单确认" in screen.text  # no name, no phone again (R11: first purchase only)
    assert f"企业名称：{ENTERPRISE_NAME}" in screen.text
    assert "高级版 2年：¥9,600.00" in screen.text


async def test_unexpected_text_after_the_order_expired_shows_it_as_expired(esign_harness):
    """The payment step of an order past paying does not ask for payment any more."""
    buyer = esign_harness.user()
    await to_payment(esign_harness, buyer)
    esign_harness.clock.advance(minutes=31)

    screen = await buyer.send("付好了吗")

    assert screen.text.startswith(HINT)
    assert "状态：已过期" in screen.text
    assert "已提交，应付" not in screen.text and "去支付" not in screen.buttons
