"""购买咨询, 联系客服 and 开具发票 without a staff group (STAFF_CHAT_ID unset): the customer is
shown how to reach the service (config/support.toml [contact]) and when, never invited to write
a message nobody will read; and every tap on 联系客服 shows something."""
import pytest
from esign_devkit.testing.harness import BotHarness

from services.support_config import ContactDetails
from tests.flows import steps

PAGE = "https://cloud.tencent.com/document/product/1323/59638"
INVITATIONS = ("留言", "在此发送", "直接发送", "leave a message", "Write here")


@pytest.fixture
async def no_group(redis, clock):
    harness = BotHarness(redis, clock=clock, staff_group=False)
    yield harness
    await harness.close()


def assert_no_invitation(text: str) -> None:
    for words in INVITATIONS:
        assert words not in text, f"{words!r} invites a message nobody reads:\n{text}"


async def test_R2_consultation_shows_the_contact_details_and_hours(no_group):
    buyer = no_group.user()
    await steps.to_editions(buyer)
    await buyer.tap(steps.FLAGSHIP)
    screen = await buyer.tap("购买咨询")

    assert screen.text.startswith("☎️ 联系客服 · 购买咨询")
    assert "客服工作时间：每天 09:00–21:00（北京时间）" in screen.text
    assert f"联系我们：{PAGE}" in screen.text
    assert "根据客服的指引进行购买" in screen.text
    assert_no_invitation(screen.text)
    assert "联系我们" in screen.buttons  # the link
    assert await no_group.app.support.live_ticket(buyer.id) is None  # no ticket nobody would see


async def test_R2_a_message_after_it_is_not_taken_for_a_consultation(no_group):
    buyer = no_group.user()
    await steps.to_editions(buyer)
    await buyer.tap(steps.FLAGSHIP)
    await buyer.tap("购买咨询")
    screen = await buyer.send("我想买旗舰版")
    assert "已收到" not in screen.text and "客服会" not in screen.text  # never a promise of an answer


async def test_R17_contact_always_shows_something_even_tapped_twice(no_group):
    buyer = no_group.user()
    await buyer.send("/start")
    first = await buyer.tap("联系客服")
    assert first.text.startswith("☎️ 联系客服") and "联系我们" in first.text
    assert_no_invitation(first.text)
    second = await buyer.tap("联系客服")  # from the contact screen itself
    assert second.message_id != first.message_id and second.text == first.text  # a new message below


async def test_R16_invoice_names_the_order_to_give(no_group):
    buyer = no_group.user()
    order = await steps.paid_order(no_group, buyer)
    await buyer.tap("我的订单")
    await buyer.tap("高级版 1年 · ¥4,800.00 · 已支付待绑定")
    screen = await buyer.tap("开具发票")
    assert f"提供订单号 {order.id}" in screen.text
    assert_no_invitation(screen.text)


async def test_R17_english_and_the_configured_phone_and_email(redis, clock):
    harness = BotHarness(redis, clock=clock, staff_group=False)
    config = harness.app.support.config
    harness.app.support.config = config.model_copy(update={"contact": ContactDetails(
        phone="400-000-0000", email="help@example.com")})
    try:
        buyer = harness.user("en")
        await buyer.send("/start")
        screen = await buyer.tap("Contact customer service")
        assert "Phone: 400-000-0000" in screen.text and "Email: help@example.com" in screen.text
        assert "Contact us" not in screen.buttons  # no page configured: no link
        assert_no_invitation(screen.text)
    finally:
        await harness.close()


def test_contact_details_must_give_a_way():
    with pytest.raises(ValueError, match="at least one of page, phone or email"):
        ContactDetails()
    with pytest.raises(ValueError):
        ContactDetails(page="http://insecure.example")
