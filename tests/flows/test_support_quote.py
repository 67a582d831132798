"""Agent quotes (F11): in a customer's topic an agent issues an order (edition, years, pack and
an optional negotiated price) by command or by buttons. The order's channel is consultation;
the customer gets an in-chat invoice within the chat limit, the web checkout link otherwise;
when it is paid the topic is told. Binding works as for any order. And R16: the agent marks an
invoice issued and the customer is told."""
import re

import pytest

from bot.flows.support import check_quotes
from services.orders import Channel, OrderStatus
from tests.flows import steps
from tests.flows.support_steps import CLAIM, END, card, claimed, consult_flagship, last_said, said_to
from tests.web.conftest import start_world

WEB_LINK = re.compile(r"/checkout/\S+")


def url_button(message: dict, label: str) -> str:
    for row in (message.get("reply_markup") or {}).get("inline_keyboard", []):
        for button in row:
            if button["text"] == label:
                return button.get("url") or button["web_app"]["url"]
    raise AssertionError(f"no {label} button on: {message.get('text')}")


async def test_F11_quote_within_the_chat_limit_is_paid_in_chat_and_the_topic_is_told(esign_harness):
    phone = "+8613800138000"
    enterprise = await esign_harness.enterprise("深圳示例科技有限公司", members={phone: "super_admin"})
    buyer = esign_harness.user(phone=phone)
    await steps.to_confirmation(esign_harness, buyer)  # the phone is verified in chat (F3)
    await buyer.tap("联系客服")
    agent = esign_harness.agent(alias="客服小李")
    await agent.tap(CLAIM, topic=buyer)

    screen = await agent.command("/quote advanced 1", topic=buyer)

    assert "已向客户发送订单" in screen.text and "客户可在聊天内支付" in screen.text
    assert "按新购计价：客户的企业「深圳示例科技有限公司」当前为体验版" in screen.text
    order = await esign_harness.last_order(buyer)
    assert order.channel is Channel.CONSULTATION and order.total_fen == 480_000
    assert order.phone == phone and order.enterprise_name == steps.ENTERPRISE_NAME
    offer = [m for m in said_to(buyer) if (m.get("text") or "").startswith("🧾 客服小李为您创建了订单")][-1]
    assert f"订单 {order.id}" in offer["text"] and "合计：¥4,800.00" in offer["text"]
    invoice = buyer.last_invoice()
    assert invoice["payload"] == order.id and invoice["total_amount"] == 480_000

    await buyer.pay()

    # Bought for the enterprise its super admin is buying for: delivered at payment (R19).
    await esign_harness.expect_order(buyer, "bound")
    agent.expect(rf"💰 订单 {order.id} 已支付 ¥4,800.00（聊天内支付）", topic=buyer)
    await check_quotes(esign_harness.dp["desk"])  # the scheduler job's pass tells nothing twice
    assert len([t for t in agent.texts(buyer) if t.startswith("💰")]) == 1
    assert (await esign_harness.enterprises.get(enterprise.id)).edition == "advanced"


async def test_F11_quote_for_a_customer_whose_enterprise_is_higher_is_refused_and_a_same_edition_is_a_renewal(
        esign_harness):
    """R18: an agent's quote is checked like a purchase: a lower edition than the customer's
    enterprise has is refused with the reason, before any order; the same edition is a renewal."""
    phone = "+8613800138000"
    enterprise = await esign_harness.enterprise_on("深圳示例科技有限公司", "flagship", expires_in_days=200,
                                                 members={phone: "super_admin"})
    buyer = esign_harness.user(phone=phone)
    await steps.to_confirmation(esign_harness, buyer)  # the phone is verified in chat (F3)
    await buyer.tap("联系客服")
    agent = esign_harness.agent()
    await agent.tap(CLAIM, topic=buyer)

    screen = await agent.command("/quote professional 1", topic=buyer)

    assert "未创建订单" in screen.text and "当前为旗舰版" in screen.text and "不支持版本降级" in screen.text
    assert await esign_harness.orders_of(buyer) == []

    screen = await agent.command("/quote flagship 1", topic=buyer)

    assert "按「版本续费」计价" in screen.text and "已向客户发送订单" in screen.text
    [order] = await esign_harness.orders_of(buyer)
    assert order.kind.value == "renewal" and order.for_enterprise and order.enterprise_id == enterprise.id
    assert order.total_fen == 5_980_000 and not esign_harness.app.orders.payable_in_chat(order)


async def test_F11_quote_by_buttons(esign_harness):
    buyer = esign_harness.user()
    agent = await claimed(esign_harness, buyer)
    await agent.tap("🧾 报价", topic=buyer)
    await agent.tap(re.compile("^高级版"), topic=buyer)
    await agent.tap(re.compile("^2年"), topic=buyer)
    await agent.tap("合同加量包 1千份 · +¥4,000.00", topic=buyer)
    confirm = agent.last(buyer)
    assert "高级版 2年：¥9,600.00" in confirm.text and "合计：¥13,600.00" in confirm.text
    assert "/quote advanced 2 pack_1k" in confirm.text  # how to negotiate the price instead

    await agent.tap("发送给客户", topic=buyer)

    order = await esign_harness.last_order(buyer)
    assert (order.edition, order.years, order.pack, order.total_fen) == ("advanced", 2, "pack_1k", 1_360_000)
    assert buyer.last_invoice()["total_amount"] == 1_360_000
    agent.expect(f"已向客户发送订单 {order.id}（¥13,600.00）", topic=buyer)


async def test_F11_a_cancelled_wizard_issues_nothing(esign_harness):
    buyer = esign_harness.user()
    agent = await claimed(esign_harness, buyer)
    await agent.command("/quote", topic=buyer)
    await agent.tap(re.compile("^旗舰版"), topic=buyer)
    await agent.tap("取消", topic=buyer)
    assert agent.last(buyer).text == "已取消报价。"
    assert await esign_harness.orders_of(buyer) == []


async def test_F11_negotiated_flagship_quote_gets_the_web_link(esign_harness):
    buyer = esign_harness.user()
    await consult_flagship(buyer)
    agent = esign_harness.agent(alias="客服小李")
    await agent.tap(CLAIM, topic=buyer)

    screen = await agent.command("/quote 旗舰版 1年 pack_10k ¥80,000", topic=buyer)

    assert "及网页端支付链接" in screen.text and "议价 ¥80,000.00（目录价 ¥89,800.00）" in screen.text
    order = await esign_harness.last_order(buyer)
    assert order.channel is Channel.CONSULTATION and order.total_fen == 8_000_000
    assert sum(line.amount_fen for line in order.lines) == 8_000_000  # the lines add up to the price
    assert order.contracts == 20_000
    offer = last_said(buyer)
    assert "合计：¥80,000.00" in offer["text"] and WEB_LINK.search(offer["text"])
    assert url_button(offer, "网页端支付") == await esign_harness.app.checkout.link_for_order(order)
    assert buyer.telegram.invoices(buyer.id) == []  # never an in-chat invoice for 旗舰版 (R2)


@pytest.mark.parametrize("args, problem", [
    ("/quote", None),  # no arguments: the buttons
    ("/quote flagship", "用法：/quote"),
    ("/quote diamond 1", "无法识别版本「diamond」"),
    ("/quote flagship 7", "无法识别年限「7」"),
    ("/quote flagship 1 pack_99k", "无法识别合同加量包「pack_99k」"),
    ("/quote flagship 1 pack_10k cheap", "无法识别价格「cheap」"),
    ("/quote flagship 1 99999999", "议价 ¥99,999,999.00 无效：须大于 0 且不高于目录价 ¥59,800.00"),
    ("/quote flagship 1 none 0", "议价 ¥0.00 无效"),
])
async def test_F11_a_wrong_quote_gets_a_clear_answer_and_no_order(esign_harness, args, problem):
    buyer = esign_harness.user()
    agent = await claimed(esign_harness, buyer)
    screen = await agent.command(args, topic=buyer)
    if problem is None:
        assert "请选择版本" in screen.text
    else:
        assert problem in screen.text
    assert await esign_harness.orders_of(buyer) == []


async def test_F11_quotes_need_a_live_ticket(esign_harness):
    buyer = esign_harness.user()
    agent = await claimed(esign_harness, buyer)
    await buyer.tap(END)
    screen = await agent.command("/quote advanced 1", topic=buyer)
    assert "没有进行中的工单" in screen.text
    assert await esign_harness.orders_of(buyer) == []


async def test_F11_an_unpaid_quote_is_reported_by_the_scheduler_when_it_lapses(esign_harness):
    buyer = esign_harness.user()
    agent = await claimed(esign_harness, buyer)
    await agent.command("/quote advanced 1", topic=buyer)
    order = await esign_harness.last_order(buyer)
    esign_harness.advance(minutes=31)
    await esign_harness.run_jobs()  # a tick of the background task
    agent.expect(rf"⌛ 订单 {order.id} 未支付，状态：已过期", topic=buyer)
    assert await esign_harness.app.support.quotes_waiting() == []


async def test_F11_a_quote_paid_where_no_one_told_staff_is_told_by_the_next_scheduler_tick(esign_harness):
    buyer = esign_harness.user()
    agent = await claimed(esign_harness, buyer)
    await agent.command("/quote flagship 1", topic=buyer)
    order = await esign_harness.last_order(buyer)
    # Paid where nothing tells the topic at once (the notice's telling failed, say).
    await esign_harness.orders.mark_paid(order.id, charge_id="web:late", amount_fen=order.total_fen,
                                         currency=order.currency, provider="sandbox")
    assert not [t for t in agent.texts(buyer) if t.startswith("💰")]

    await esign_harness.run_jobs()

    agent.expect(rf"💰 订单 {order.id} 已支付", topic=buyer)
    await esign_harness.run_jobs()
    assert len([t for t in agent.texts(buyer) if t.startswith("💰")]) == 1


async def test_F11_without_a_web_link_the_agent_is_told(esign_harness):
    buyer = esign_harness.user()
    agent = await claimed(esign_harness, buyer)
    esign_harness.app.checkout = None  # as before the web checkout existed
    before = len(said_to(buyer))
    screen = await agent.command("/quote flagship 1", topic=buyer)
    assert "网页端支付链接暂不可用" in screen.text
    assert len(said_to(buyer)) == before  # nothing the customer could not pay


async def test_R16_the_agent_marks_the_invoice_issued_and_the_customer_is_told(esign_harness):
    buyer = esign_harness.user()
    order = await steps.paid_order(esign_harness, buyer)
    await buyer.tap("我的订单")
    await buyer.tap(re.compile("已支付待绑定"))
    await buyer.tap("开具发票")
    await buyer.send("抬头：深圳示例科技有限公司，税号 91440300XXXXXXXX，邮箱 a@example.com")
    agent = esign_harness.agent(alias="客服小李")
    assert "税号" in agent.messages(buyer)[-1]["text"]

    await agent.tap(f"🧾 发票已开具（{order.id}）", topic=buyer)

    assert last_said(buyer)["text"] == f"🧾 订单 {order.id} 的发票已开具，请查收。"
    agent.expect(f"已通知客户：订单 {order.id} 的发票已开具", topic=buyer)
    assert "发票：已于 01-05 10:00 开具" in card(agent, buyer)
    screen = await agent.command("/invoiced", topic=buyer)
    assert "用法" in screen.text  # nothing left to invoice on this ticket
    screen = await agent.command(f"/invoiced {order.id}", topic=buyer)
    assert "已标记为已开具" in screen.text
    assert [m.get("text") for m in said_to(buyer)].count(f"🧾 订单 {order.id} 的发票已开具，请查收。") == 1


@pytest.fixture
async def web_world(redis, clock):
    world, client = await start_world(redis, clock)
    yield world
    await world.gateway.drain()
    await client.close()
    assert world.harness.unanswered_queries() == []
    await world.harness.close()


async def test_F11_flagship_consultation_ends_in_a_sale_paid_on_the_web(web_world):
    """As a new user and a new agent would: a 旗舰版 buyer presses 购买咨询; an agent claims the
    ticket, answers, quotes a price and closes it; the buyer pays through the link; the topic
    shows the payment."""
    w = web_world
    h = w.harness
    buyer = h.user(name="Alice")
    await consult_flagship(buyer)
    agent = h.agent(name="Li", alias="客服小李")
    assert "购物车：旗舰版" in card(agent, buyer)

    await agent.tap(CLAIM, topic=buyer)
    await buyer.send("旗舰版 1 年能优惠吗？")
    await agent.send("可以，给您 ¥55,000 的价格。", topic=buyer)
    assert last_said(buyer)["text"] == "💬 客服小李：\n可以，给您 ¥55,000 的价格。"
    await agent.command("/quote flagship 1 55000", topic=buyer)
    offer = last_said(buyer)
    url = url_button(offer, "网页端支付")
    await agent.command("/close", topic=buyer)
    assert "👋 欢迎使用腾讯电子签" in buyer.screen.text

    # The buyer pays through the link (R3: the phone is verified on the page first).
    page = await w.get(url)
    assert page.status == 200 and "¥55,000.00" in page.text
    await w.post(f"{url}/code", {"buyer": "personal", "phone": buyer.phone})
    await w.get(url)
    await w.post(f"{url}/verify", {"code": h.sms.last_code(buyer.phone)})
    await w.get(url)
    to_cashier = await w.post(f"{url}/pay", {})
    await w.get(to_cashier.location)
    paid = await w.post(to_cashier.location, {"action": "pay"})
    assert paid.status == 303
    await w.gateway.drain()
    order = await h.last_order(buyer)
    assert order.status is OrderStatus.PAID and order.channel is Channel.CONSULTATION

    # The topic shows the payment at once (the web notice tells it), and only once: the quote
    # scheduler job's later pass finds nothing left to tell.
    agent.expect(rf"💰 订单 {order.id} 已支付 ¥55,000.00（网页端支付）", topic=buyer)
    assert await check_quotes(h.dp["desk"]) == 0
