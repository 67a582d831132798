"""A ticket's life (F11): pending → open (claimed; the customer hears an agent joined; the agent
gets the transcript) → resolved (/close or 结束咨询; both told; the customer lands on 首页 with the
cart kept) → reopened by a message within the window. Transfer, /queue, /history, /ban, the
topic created once (two first messages at once) and again after staff deleted it, and working
hours at a fixed clock."""
import asyncio
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

from esign_devkit.testing.harness import BotHarness

from bot.flows.support.desk import Desk
from config.settings import Settings
from services.support import TicketStatus
from tests.flows import steps
from tests.flows.support_steps import (
    CLAIM,
    END,
    banner_pinned,
    card,
    claimed,
    consult_flagship,
    contact,
    last_said,
    unlabelled,
)


def beijing(year, month, day, hour, minute=0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=timezone(timedelta(hours=8))).astimezone(UTC)


# --- claim, close, reopen ----------------------------------------------------------------------


async def test_F11_claim_tells_the_customer_and_shows_the_agent_the_transcript(esign_harness):
    buyer = esign_harness.user(name="Alice")
    await contact(buyer)
    await buyer.send("你好，我想开发票")
    await buyer.send_media("photo", "营业执照")
    esign_harness.advance(minutes=3)

    agent = esign_harness.agent(name="Li", alias="客服小李")
    await agent.tap(CLAIM, topic=buyer)

    assert (await esign_harness.ticket_of(buyer)).status is TicketStatus.OPEN
    assert last_said(buyer)["text"] == "👩‍💼 客服小李已接入，正在为您服务。"
    agent.expect("🙋 客服小李（Li） 已接单", topic=buyer)
    transcript = agent.expect("📜 对话记录", topic=buyer)["text"]
    assert "客户：你好，我想开发票" in transcript and "客户：[图片] 营业执照" in transcript
    assert "状态：🟢 处理中 · 客服小李（Li）" in card(agent, buyer)
    assert agent.topics()[agent.topic_id(buyer)]["name"].startswith("🟢")
    assert await esign_harness.app.support.queue() == []


async def test_F11_a_second_agent_cannot_take_a_claimed_ticket(esign_harness):
    buyer = esign_harness.user()
    first = await claimed(esign_harness, buyer)
    second = esign_harness.agent(name="Wang", alias="客服小王")
    screen = await second.command("/claim", topic=buyer)
    assert "此工单已由 客服小李（Li） 处理" in screen.text
    before = len(buyer.telegram.messages(buyer.id))
    await second.send("我来回答", topic=buyer)
    second.expect("消息未发送给客户", topic=buyer)
    assert len(buyer.telegram.messages(buyer.id)) == before
    await first.send("我在", topic=buyer)
    assert last_said(buyer)["text"].endswith("我在")


async def test_F11_answering_a_waiting_ticket_claims_it(esign_harness):
    buyer = esign_harness.user()
    await contact(buyer)
    agent = esign_harness.agent(alias="客服小李")
    await agent.send("您好！", topic=buyer)
    assert (await esign_harness.ticket_of(buyer)).agent_id == agent.id
    texts = [m.get("text") for m in buyer.telegram.messages(buyer.id, from_bot=True)][-2:]
    assert texts == ["👩‍💼 客服小李已接入，正在为您服务。", "💬 客服小李：\n您好！"]


async def test_F11_agent_close_tells_both_and_lands_the_customer_home_with_the_cart(esign_harness):
    buyer = esign_harness.user()
    await consult_flagship(buyer)
    agent = esign_harness.agent(alias="客服小李")
    await agent.tap(CLAIM, topic=buyer)
    assert banner_pinned(buyer)

    await agent.command("/close", topic=buyer)

    ticket = await esign_harness.ticket_of(buyer)
    assert ticket.status is TicketStatus.RESOLVED and ticket.resolved_by == "agent"
    agent.expect("✅ 工单已由 客服小李.* 结束，客户已收到通知", topic=buyer)
    assert "状态：⚪ 已结束（客服结束）" in card(agent, buyer)
    topic = agent.topics()[agent.topic_id(buyer)]
    assert topic["is_closed"] and topic["name"].startswith("⚪")
    screen = buyer.screen
    assert screen.text.startswith("✅ 客服小李已结束本次咨询")  # the alias, as in every reply
    assert "👋 欢迎使用腾讯电子签" in screen.text  # 首页
    assert await esign_harness.state_of(buyer) is None
    assert (await esign_harness.session_of(buyer)).cart.edition == "flagship"  # the cart is still there
    assert not banner_pinned(buyer)
    # The bot has the conversation back: text is no longer relayed after the reopen window.
    esign_harness.advance(minutes=31)
    await buyer.send("还在吗")
    assert "请使用下方按钮" in buyer.screen.text


async def test_F11_the_customer_ends_the_consultation(esign_harness):
    buyer = esign_harness.user()
    agent = await claimed(esign_harness, buyer)
    screen = await buyer.tap(END)
    assert screen.text.startswith("✅ 本次咨询已结束")
    assert "👋 欢迎使用腾讯电子签" in screen.text
    assert (await esign_harness.ticket_of(buyer)).resolved_by == "customer"
    agent.expect("⚪ 客户已结束咨询", topic=buyer)
    assert not banner_pinned(buyer)
    # The card and a stale 结束咨询 say it is over.
    assert agent.last(buyer).text  # the topic stays for the history
    answer = await buyer.tap_stale(screen.message_id, "sup:end:")
    assert answer["text"] == "当前没有进行中的咨询。"


async def test_F11_a_message_within_the_window_reopens_the_ticket(esign_harness):
    buyer = esign_harness.user()
    agent = await claimed(esign_harness, buyer)
    await buyer.tap(END)
    esign_harness.advance(minutes=10)

    await buyer.send("还有一个问题")

    ticket = await esign_harness.ticket_of(buyer)
    assert ticket.status is TicketStatus.OPEN and ticket.agent_id == agent.id
    agent.expect("工单已重新打开", topic=buyer)
    assert unlabelled(agent.messages(buyer)[-1]["text"]) == "还有一个问题"
    assert not agent.topics()[agent.topic_id(buyer)]["is_closed"]
    assert "已为您重新接通客服" in buyer.screen.text and banner_pinned(buyer)
    await agent.send("请讲", topic=buyer)
    assert last_said(buyer)["text"] == "💬 客服小李：\n请讲"


async def test_F11_after_the_window_a_new_ticket_is_needed(esign_harness):
    buyer = esign_harness.user()
    agent = await claimed(esign_harness, buyer)
    old = await esign_harness.ticket_of(buyer)
    await agent.command("/close", topic=buyer)
    esign_harness.advance(minutes=31)
    await buyer.send("在吗")
    assert (await esign_harness.ticket_of(buyer)).status is TicketStatus.RESOLVED
    await buyer.tap("联系客服")
    new = await esign_harness.ticket_of(buyer)
    assert new.id != old.id and new.status is TicketStatus.PENDING
    assert len(agent.topics()) == 1  # the same topic, reopened, with a new card pinned
    assert new.id in card(agent, buyer)
    assert not agent.topics()[agent.topic_id(buyer)]["is_closed"]


# --- transfer, queue, history, ban -------------------------------------------------------------


async def test_F11_transfer_to_another_agent(esign_harness):
    buyer = esign_harness.user()
    li = await claimed(esign_harness, buyer)
    wang = esign_harness.agent(name="Wang", alias="客服小王")
    await wang.command("/help")  # agents are known once they have written in the group

    await li.command("/transfer", topic=buyer)
    await li.tap("客服小王（Wang）", topic=buyer)

    assert (await esign_harness.ticket_of(buyer)).agent_id == wang.id
    assert last_said(buyer)["text"] == "🔁 已为您转接至客服小王。"
    li.expect("工单已由 客服小李（Li） 转接给 客服小王（Wang）", topic=buyer)
    await li.send("我还在", topic=buyer)
    li.expect("此工单由 客服小王（Wang） 处理，消息未发送给客户", topic=buyer)
    await wang.send("您好，我是小王", topic=buyer)
    assert last_said(buyer)["text"] == "💬 客服小王：\n您好，我是小王"
    # By name too, back to Li.
    await wang.command("/transfer 客服小李", topic=buyer)
    assert (await esign_harness.ticket_of(buyer)).agent_id == li.id
    screen = await wang.command("/transfer nobody", topic=buyer)
    assert "找不到客服「nobody」" in screen.text


async def test_F11_queue_lists_waiting_tickets_oldest_first_with_waiting_time(esign_harness):
    alice, bob, carol = (esign_harness.user(name=n) for n in ("Alice", "Bob", "Carol"))
    await contact(alice)
    esign_harness.advance(minutes=5)
    await consult_flagship(bob)
    esign_harness.advance(minutes=65)
    await contact(carol)
    agent = esign_harness.agent()

    screen = await agent.command("/queue")

    lines = screen.text.splitlines()
    assert lines[0] == "⏳ 等待接单的工单（3），最早的在前："
    assert lines[1].startswith("1. Alice · 联系客服") and lines[1].endswith("已等待 1 小时 10 分钟")
    assert lines[2].startswith("2. Bob · 购买咨询") and lines[2].endswith("已等待 1 小时 5 分钟")
    assert lines[3].startswith("3. Carol · 联系客服") and lines[3].endswith("已等待 0 分钟")
    await agent.tap("🙋 接单 2. Bob")
    assert (await esign_harness.ticket_of(bob)).agent_id == agent.id
    screen = await agent.command("/queue")
    assert "Bob" not in screen.text and "（2）" in screen.text


async def test_F11_history_lists_the_customers_past_tickets(esign_harness):
    buyer = esign_harness.user(name="Alice")
    agent = await claimed(esign_harness, buyer)
    first = await esign_harness.ticket_of(buyer)
    await buyer.send("问题一")
    await agent.command("/close", topic=buyer)
    esign_harness.advance(hours=2)
    await consult_flagship(buyer)
    second = await esign_harness.ticket_of(buyer)

    screen = await agent.command("/history", topic=buyer)

    lines = screen.text.splitlines()
    assert lines[0] == "🗂 Alice 的工单（2），最新的在前："
    assert lines[1].startswith(f"• {second.id} · 购买咨询") and "待接单" in lines[1]
    assert lines[2].startswith(f"• {first.id} · 联系客服") and "已结束 · 客服小李（Li） · 1 条消息" in lines[2]


async def test_F11_ban_and_unban(esign_harness):
    buyer = esign_harness.user()
    agent = await claimed(esign_harness, buyer)
    screen = await agent.command("/ban 骚扰", topic=buyer)
    assert "已禁止该客户联系客服" in screen.text
    assert (await esign_harness.ticket_of(buyer)).resolved_by == "ban"
    assert buyer.screen.text.startswith("本次咨询已结束")  # lands on 首页
    assert not banner_pinned(buyer)

    await buyer.send("喂")
    assert "请使用下方按钮" in buyer.screen.text  # not relayed, not reopened
    await buyer.tap("联系客服")
    assert "您暂时无法使用在线客服" in buyer.screen.text
    assert (await esign_harness.ticket_of(buyer)).resolved_by == "ban"  # no new ticket

    screen = await agent.command("/unban", topic=buyer)
    assert "已解除禁止" in screen.text
    await buyer.tap("联系客服")
    assert (await esign_harness.ticket_of(buyer)).status is TicketStatus.PENDING


# --- the topic: created once, created again ----------------------------------------------------


async def test_F11_two_first_messages_at_once_make_one_topic(esign_harness):
    """The topic is gone (staff deleted it) and two messages arrive at once: one new topic."""
    buyer = esign_harness.user()
    agent = await claimed(esign_harness, buyer)
    old = agent.topic_id(buyer)
    await esign_harness.bot.delete_forum_topic(esign_harness.staff_chat_id, old)

    # The customer's two messages, and a post from the staff side (the quote watcher's, say),
    # which does not wait on the customer's update lock.
    desk = Desk(esign_harness.bot, esign_harness.app)
    await asyncio.gather(buyer.send("第一条"), buyer.send("第二条"), desk.post(buyer.id, "💰 staff side"))

    [(thread, topic)] = agent.topics().items()
    assert thread != old and topic["name"].endswith(f"#{buyer.id}")
    texts = [unlabelled(t) for t in agent.texts(buyer, from_bot=True)]
    assert texts.count("第一条") == 1 and texts.count("第二条") == 1 and texts.count("💰 staff side") == 1
    assert len(esign_harness.telegram.calls_of("createForumTopic")) == 2  # the first one and one more


async def test_F11_two_customers_at_once_get_a_topic_each(esign_harness):
    alice, bob = esign_harness.user(name="Alice"), esign_harness.user(name="Bob")
    await asyncio.gather(contact(alice), contact(bob))
    names = sorted(t["name"] for t in esign_harness.agent().topics().values())
    assert names == [f"🟡 Alice · #{alice.id}", f"🟡 Bob · #{bob.id}"]


async def test_F11_a_topic_deleted_by_staff_is_created_again_with_the_card(esign_harness):
    buyer = esign_harness.user(name="Alice")
    agent = await claimed(esign_harness, buyer)
    old = agent.topic_id(buyer)
    await esign_harness.bot.delete_forum_topic(esign_harness.staff_chat_id, old)

    await buyer.send("你们还在吗？")

    new = agent.topic_id(buyer)
    assert new != old
    assert "状态：🟢 处理中" in card(agent, buyer)  # the intake card, pinned again
    assert unlabelled(agent.messages(buyer)[-1]["text"]) == "你们还在吗？"
    await agent.send("在的", topic=buyer)
    assert last_said(buyer)["text"] == "💬 客服小李：\n在的"
    # Staff commands in the new topic find the customer.
    assert "Alice" in (await agent.command("/history", topic=buyer)).text


async def test_F11_a_new_ticket_after_the_topic_was_deleted_gets_one_new_topic_and_one_card(esign_harness):
    buyer = esign_harness.user(name="Alice")
    agent = await claimed(esign_harness, buyer)
    await agent.command("/close", topic=buyer)
    await esign_harness.bot.delete_forum_topic(esign_harness.staff_chat_id, agent.topic_id(buyer))
    esign_harness.advance(hours=1)

    await buyer.tap("联系客服")

    [topic] = agent.topics().values()
    assert topic["name"] == f"🟡 Alice · #{buyer.id}" and not topic["is_closed"]
    cards = [t for t in agent.texts(buyer) if t.startswith("🆕 工单")]
    assert len(cards) == 1 and (await esign_harness.ticket_of(buyer)).id in cards[0]
    assert len(agent.pinned(buyer)) == 1


async def test_F11_a_topic_telegram_failed_to_create_is_created_on_the_next_try(esign_harness):
    buyer = esign_harness.user()
    await buyer.send("/start")
    esign_harness.telegram.fail_next("createForumTopic", 500)
    await buyer.tap("联系客服")
    [answer] = [a for a in esign_harness.telegram.callback_answers.values() if a.get("show_alert")]
    assert "抱歉" in answer["text"]  # the error guard's apology; nothing is half-shown
    await buyer.tap("联系客服")
    agent = esign_harness.agent()
    assert (await esign_harness.ticket_of(buyer)).id in card(agent, buyer)
    assert banner_pinned(buyer) and buyer.screen.text.startswith("☎️ 联系客服")


# --- working hours, at a fixed clock -----------------------------------------------------------


async def test_F11_outside_working_hours_the_customer_is_told_when_and_waits_in_the_queue(esign_harness):
    esign_harness.clock.set(beijing(2026, 1, 5, 22, 30))  # Monday evening, after 21:00
    buyer = esign_harness.user()
    await contact(buyer)
    text = buyer.screen.text
    assert "当前为非工作时间（客服工作时间：每天 09:00–21:00，北京时间）" in text
    assert "客服将于 01-06 09:00 起回复" in text
    assert "10 分钟内回复" not in text
    assert [t.user_id for t in await esign_harness.app.support.queue()] == [buyer.id]

    esign_harness.clock.set(beijing(2026, 1, 6, 8, 59))
    await buyer.tap("联系客服")
    assert "客服将于 01-06 09:00 起回复" in buyer.screen.text
    esign_harness.clock.set(beijing(2026, 1, 6, 9, 0))
    await buyer.tap("联系客服")
    assert "客服预计 10 分钟内回复" in buyer.screen.text


async def test_F11_working_hours_come_from_config(redis, clock, tmp_path: Path):
    config = tmp_path / "support.toml"
    config.write_text('reply_minutes = 5\nclosed_dates = ["2026-01-12"]\n'
                      '[[hours]]\ndays = [1, 2, 3, 4, 5]\nopen = "09:30"\nclose = "18:00"\n', encoding="utf-8")
    settings = Settings(_env_file=None, bot_token=None, code_secret="test-secret", support_config_path=config)
    harness = BotHarness(redis, clock=clock, settings=settings)
    try:
        harness.clock.set(beijing(2026, 1, 10, 11))  # Saturday
        buyer = harness.user()
        await contact(buyer)
        assert "客服工作时间：周一、周二、周三、周四、周五 09:30–18:00" in buyer.screen.text
        assert "客服将于 01-13 09:30 起回复" in buyer.screen.text  # Monday the 12th is a holiday
        harness.clock.set(beijing(2026, 1, 13, 10))
        await buyer.tap("联系客服")
        assert "客服预计 5 分钟内回复" in buyer.screen.text
        assert harness.unanswered_queries() == []
    finally:
        await harness.close()


async def test_F11_waiting_customers_are_told_how_many_are_ahead(esign_harness):
    alice, bob = esign_harness.user(), esign_harness.user()
    await contact(alice)
    esign_harness.advance(seconds=30)
    await contact(bob)
    assert "您前面还有 1 位客户在等待" in bob.screen.text
    assert "您前面还有" not in alice.screen.text


async def test_R2_the_cart_survives_the_whole_consultation(esign_harness):
    """From the web-only screen to consultation and back: the purchase can go on as before."""
    buyer = esign_harness.user()
    await steps.to_editions(buyer)
    await buyer.tap(steps.PROFESSIONAL)
    await buyer.tap("购买咨询")
    await buyer.tap(END)
    assert (await esign_harness.session_of(buyer)).cart.edition == "professional"
