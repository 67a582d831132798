"""The three entries to customer service (F11): 联系客服 from any screen (R17), 购买咨询 (R2) and
开具发票 from an order's details (R16). Each opens a ticket (or returns to the live one); the
staff group gets one topic per customer with the intake card pinned; the customer is told the
request was received and roughly when an agent answers."""
import re

from esign_devkit.testing.harness import BotHarness

from services.catalog import load_catalog
from services.support import TicketKind, TicketStatus
from tests.flows import steps
from tests.flows.support_steps import CLAIM, banner_pinned, card, consult_flagship, contact


async def test_R17_contact_opens_a_ticket_and_a_topic_with_the_intake_card_pinned(esign_harness):
    buyer = esign_harness.user(name="Alice")
    await contact(buyer)

    ticket = await esign_harness.ticket_of(buyer)
    assert ticket.status is TicketStatus.PENDING and ticket.kind is TicketKind.CONTACT
    screen = buyer.screen
    assert screen.text.startswith("☎️ 联系客服")
    assert "已收到您的请求，客服预计 10 分钟内回复" in screen.text
    assert {"结束咨询", "🏠 首页", "联系客服"} <= set(screen.buttons)
    assert await esign_harness.state_of(buyer) == "Menu:contact"
    assert banner_pinned(buyer)  # the customer can see a conversation is open

    agent = esign_harness.agent()
    [topic] = agent.topics().values()
    assert topic["name"] == f"🟡 Alice · #{buyer.id}"  # named so an agent recognizes them
    text = card(agent, buyer)
    assert f"工单 {ticket.id} · 联系客服" in text
    assert f"客户：Alice · ID {buyer.id} · 中文" in text
    assert "手机号：未验证" in text and "来源：首页" in text
    assert "状态：🟡 待接单" in text
    assert CLAIM in agent.last(buyer).buttons


async def test_R2_consultation_from_the_flagship_screen_carries_the_cart(esign_harness):
    buyer = esign_harness.user(name="Bob")
    await consult_flagship(buyer)

    assert (await esign_harness.ticket_of(buyer)).kind is TicketKind.CONSULT
    assert buyer.screen.text.startswith("☎️ 联系客服 · 购买咨询")
    assert "咨询内容：旗舰版" in buyer.screen.text
    agent = esign_harness.agent()
    text = card(agent, buyer)
    assert "工单" in text and "购买咨询" in text
    assert "购物车：旗舰版" in text
    assert "来源：版本选购 · 无法在聊天中支付" in text
    # The cart is still there: the purchase screen the buyer left is unchanged above.
    assert (await esign_harness.session_of(buyer)).cart.edition == "flagship"


async def test_R2_consultation_over_the_chat_limit_shows_the_whole_cart_and_total(redis, clock):
    catalog = load_catalog().model_copy(update={"chat_payment_limit_fen": 1_000_000})
    harness = BotHarness(redis, clock=clock, catalog=catalog)
    try:
        buyer = harness.user(name="Carol")
        await steps.to_editions(buyer)
        await buyer.tap(steps.ADVANCED)
        await buyer.tap(steps.years_button(3))
        await buyer.tap("合同加量包 1千份 · +¥4,000.00")
        await buyer.tap("购买咨询")
        text = card(harness.agent(), buyer)
        assert "购物车：高级版 3年 · 合同加量包 1千份 · 合计 ¥18,400.00" in text
        assert "咨询内容：高级版 3年 · 合同加量包 1千份 · 合计 ¥18,400.00" in buyer.screen.text
        assert harness.unanswered_queries() == []
    finally:
        await harness.close()


async def test_R16_invoice_request_from_order_details_attaches_the_order(esign_harness):
    buyer = esign_harness.user(name="Dan")
    order = await steps.paid_order(esign_harness, buyer)
    await buyer.tap("我的订单")
    await buyer.tap(re.compile("已支付待绑定"))
    buyer.expect_buttons("开具发票")

    await buyer.tap("开具发票")

    ticket = await esign_harness.ticket_of(buyer)
    assert ticket.kind is TicketKind.INVOICE and ticket.order_ids == [order.id]
    assert buyer.screen.text.startswith("☎️ 联系客服 · 开具发票")
    assert f"订单 {order.id}：高级版 1年，¥4,800.00" in buyer.screen.text
    assert "发票抬头" in buyer.screen.text  # what the agent needs from them
    agent = esign_harness.agent()
    text = card(agent, buyer)
    assert f"订单：{order.id} · 高级版 1年 · ¥4,800.00 · 已支付待绑定" in text
    assert f"手机号：+86*******{buyer.phone[-4:]}（已验证）" in text
    assert buyer.phone not in text  # masked, never in clear
    assert f"🧾 发票已开具（{order.id}）" in agent.last(buyer).buttons


async def test_R16_only_paid_orders_offer_an_invoice(esign_harness):
    buyer = esign_harness.user()
    order = await steps.to_payment(esign_harness, buyer)
    await buyer.tap("我的订单")
    screen = await buyer.tap(re.compile("待支付"))
    assert "开具发票" not in screen.buttons
    # A forged 开具发票 for the pending order is refused with a clear word, nothing opened.
    answer = await buyer.tap_stale(screen.message_id, f"sup:invoice:{order.id}")
    assert answer["text"] == "仅已支付的订单可以开具发票。"
    answer = await buyer.tap_stale(screen.message_id, "sup:invoice:o-not-mine")
    assert answer["text"] == "订单不存在。"
    assert await esign_harness.ticket_of(buyer) is None


async def test_R17_contact_from_the_phone_keyboard_opens_a_ticket_and_drops_the_keyboard(esign_harness):
    buyer = esign_harness.user()
    await steps.to_phone(buyer)
    await buyer.tap("联系客服")  # the reply keyboard's key
    assert (await esign_harness.ticket_of(buyer)).status is TicketStatus.PENDING
    assert esign_harness.telegram.reply_keyboard(buyer.id) is None
    assert "来源：验证手机号" in card(esign_harness.agent(), buyer)


async def test_F11_asking_again_returns_to_the_live_ticket(esign_harness):
    buyer = esign_harness.user(name="Eve")
    await contact(buyer)
    first = await esign_harness.ticket_of(buyer)
    await buyer.tap("🏠 首页")
    await buyer.tap("购买套餐")
    await buyer.tap("联系客服")

    assert (await esign_harness.ticket_of(buyer)).id == first.id  # never two open at once
    agent = esign_harness.agent()
    assert len(agent.topics()) == 1
    agent.expect("ℹ️ 客户再次发起：联系客服", topic=buyer)
    assert len(await esign_harness.app.support.queue()) == 1
    pins = [m for m in esign_harness.telegram.pinned(buyer.id) if esign_harness.telegram.message(buyer.id, m)]
    assert len(pins) == 1  # one banner


async def test_F11_double_tap_on_contact_makes_one_ticket_and_one_topic(esign_harness):
    buyer = esign_harness.user()
    await buyer.send("/start")
    answers = await buyer.double_tap("联系客服")
    assert all(a is not None for a in answers)
    assert len(await esign_harness.app.support.history(buyer.id)) == 1
    assert len(esign_harness.agent().topics()) == 1


async def test_F11_intake_card_has_the_enterprise_and_the_language(esign_harness):
    phone = "+8613800138000"
    buyer = esign_harness.user(phone=phone, name="Frank")
    await steps.paid_order(esign_harness, buyer)  # verifies the phone on the way
    await esign_harness.enterprise("深圳示例科技有限公司", members={phone: "super_admin"})
    await buyer.tap("联系客服")
    agent = esign_harness.agent()
    text = card(agent, buyer)
    assert "企业：深圳示例科技有限公司（已认证）" in text
    assert "+86*******8000（已验证）" in text and "中文" in text
    assert "来源：首页" in text  # a payment lands on 首页's step

    english = esign_harness.user(lang="en", name="Grace")
    await english.send("/start")
    await english.tap("Contact customer service")
    text = card(agent, english)  # staff posts are in the staff language (zh)
    assert f"客户：Grace · ID {english.id} · English" in text
    assert english.screen.text.startswith("☎️ Contact customer service")
    assert "an agent will answer in about 10 minutes" in english.screen.text


async def test_R17_without_a_staff_group_contact_is_the_static_screen(redis, clock):
    harness = BotHarness(redis, clock=clock, staff_group=False)
    try:
        buyer = harness.user()
        await contact(buyer)
        assert "☎️ 联系客服" in buyer.screen.text and "客服工作时间" in buyer.screen.text
        assert await harness.app.support.live_ticket(buyer.id) is None
        assert await harness.state_of(buyer) == "Menu:contact"
    finally:
        await harness.close()
