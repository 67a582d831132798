"""Relay, both ways (F11): text, photos, documents, voice, video and stickers with their
captions; replies threaded to the right message; edits mirrored where the Bot API allows.
Agents speak as the service: the customer sees the alias (or 客服), never the account.
While a ticket is live, free text goes to the agent; buttons and /start still work."""
import pytest

from tests.flows import steps
from tests.flows.support_steps import claimed, contact, last_said, said_to, unlabelled

KINDS = ["photo", "document", "voice", "video", "sticker"]


async def test_F11_text_both_ways_as_the_service(esign_harness):
    buyer = esign_harness.user(name="Alice")
    agent = await claimed(esign_harness, buyer, name="Li Lei", alias="客服小李")

    await buyer.send("旗舰版可以优惠吗？")
    assert unlabelled(agent.messages(buyer)[-1]["text"]) == "旗舰版可以优惠吗？"

    await agent.send("您好，可以为您申请优惠。", topic=buyer)
    reply = last_said(buyer)
    assert reply["text"] == "💬 客服小李：\n您好，可以为您申请优惠。"
    assert reply["from"]["id"] == esign_harness.telegram.bot_id  # sent by the bot, not forwarded
    assert "forward_origin" not in reply
    assert all("Li Lei" not in (m.get("text") or "") for m in said_to(buyer))  # never the account


async def test_F11_an_agent_without_alias_is_shown_as_customer_service(esign_harness):
    buyer = esign_harness.user()
    agent = await claimed(esign_harness, buyer, name="Han", alias=None)
    await agent.send("请稍等", topic=buyer)
    assert last_said(buyer)["text"] == "💬 客服：\n请稍等"
    await agent.command("/alias 客服小韩", topic=buyer)
    await agent.send("我是小韩", topic=buyer)
    assert last_said(buyer)["text"] == "💬 客服小韩：\n我是小韩"


@pytest.mark.parametrize("kind", KINDS)
async def test_F11_media_from_the_customer_reach_the_topic_with_captions(esign_harness, kind):
    buyer = esign_harness.user()
    agent = await claimed(esign_harness, buyer)

    await buyer.send_media(kind, "营业执照")

    copy = agent.messages(buyer)[-1]
    assert kind in copy
    assert unlabelled(copy.get("caption")) == (None if kind == "sticker" else "营业执照")
    entries = await esign_harness.app.support.transcript((await esign_harness.ticket_of(buyer)).id)
    assert entries[-1].who == "customer" and entries[-1].kind == kind


@pytest.mark.parametrize("kind", KINDS)
async def test_F11_media_from_the_agent_reach_the_customer_with_captions(esign_harness, kind):
    buyer = esign_harness.user()
    agent = await claimed(esign_harness, buyer)

    await agent.send_media(kind, "报价单", topic=buyer)

    copy = last_said(buyer)
    assert kind in copy
    if kind == "sticker":
        assert "caption" not in copy  # stickers take no caption
    else:
        assert copy["caption"] == "💬 客服小李：\n报价单"


async def test_F11_replies_are_threaded_both_ways(esign_harness):
    buyer = esign_harness.user()
    agent = await claimed(esign_harness, buyer)
    await buyer.send("第一个问题")
    await buyer.send("第二个问题")
    first_copy = next(m for m in agent.messages(buyer) if unlabelled(m.get("text")) == "第一个问题")

    # The agent answers the first question by replying to it in the topic.
    await agent.send("关于第一个问题……", topic=buyer, reply_to=first_copy["message_id"])
    answer = last_said(buyer)
    first = next(m for m in buyer.telegram.messages(buyer.id, from_bot=False) if m.get("text") == "第一个问题")
    assert answer["reply_to_message"]["message_id"] == first["message_id"]

    # The customer replies to the agent's answer; the topic shows it replying to the agent.
    agent_message = next(m for m in agent.messages(buyer, from_bot=False) if m.get("text") == "关于第一个问题……")
    await buyer.reply(answer["message_id"], "明白了")
    copy = agent.messages(buyer)[-1]
    assert unlabelled(copy["text"]) == "明白了"
    assert copy["reply_to_message"]["message_id"] == agent_message["message_id"]


async def test_F11_a_plain_topic_message_is_no_reply_for_the_customer(esign_harness):
    buyer = esign_harness.user()
    agent = await claimed(esign_harness, buyer)
    await agent.send("您好", topic=buyer)  # Telegram makes it "reply" to the topic's creation
    assert "reply_to_message" not in last_said(buyer)


async def test_F11_edits_are_mirrored_both_ways(esign_harness):
    buyer = esign_harness.user()
    agent = await claimed(esign_harness, buyer)
    await buyer.send("我要买专业版")
    mine = buyer.last_own_message()
    await buyer.edit(mine["message_id"], "我要买旗舰版")
    assert unlabelled(agent.messages(buyer)[-1]["text"]) == "我要买旗舰版"

    sent = await agent.send("价格是 ¥59,800", topic=buyer)
    await agent.edit(sent["message_id"], "价格是 ¥59,800.00/年")
    assert last_said(buyer)["text"] == "💬 客服小李：\n价格是 ¥59,800.00/年"
    assert esign_harness.telegram.edit_count(buyer.id, last_said(buyer)["message_id"]) == 1

    await buyer.send_media("photo", "旧的说明")
    photo = buyer.last_own_message()
    await buyer.edit(photo["message_id"], "新的说明")
    assert unlabelled(agent.messages(buyer)[-1]["caption"]) == "新的说明"


async def test_F11_a_note_is_internal(esign_harness):
    buyer = esign_harness.user()
    agent = await claimed(esign_harness, buyer)
    before = len(said_to(buyer))
    screen = await agent.command("/note 客户预算约 8 万", topic=buyer)
    assert "内部备注已记录" in screen.text
    assert len(said_to(buyer)) == before  # never relayed
    entries = await esign_harness.app.support.transcript((await esign_harness.ticket_of(buyer)).id)
    assert entries[-1].who == "note" and entries[-1].text == "客户预算约 8 万"


async def test_F11_free_text_goes_to_the_agent_while_buttons_and_start_still_work(esign_harness):
    buyer = esign_harness.user()
    agent = await claimed(esign_harness, buyer)

    screen = await buyer.send("/start")  # /start still works
    assert screen.text.startswith("👋")
    await buyer.send("在吗？")  # at 首页: to the agent, not "please use the buttons"
    assert unlabelled(agent.messages(buyer)[-1]["text"]) == "在吗？"
    assert buyer.screen.text.startswith("👋")  # nothing said back to the customer
    await buyer.tap("购买套餐")  # buttons still work
    assert "购买套餐" in buyer.screen.text
    await buyer.send_media("photo")
    assert "photo" in agent.messages(buyer)[-1]


async def test_F11_a_step_waiting_for_text_still_gets_it(esign_harness):
    """While a ticket is live, an enterprise name typed at the step that asks for it goes to
    the purchase, not to the agent (and an SMS code never reaches an agent)."""
    buyer = esign_harness.user()
    agent = await claimed(esign_harness, buyer)
    await steps.to_enterprise_name(buyer)
    relayed = len(agent.messages(buyer))
    await buyer.send(steps.ENTERPRISE_NAME)
    assert await esign_harness.state_of(buyer) == "Phone:number"
    await buyer.share_contact()
    await buyer.send_code()
    assert await esign_harness.state_of(buyer) == "Buy:confirm"
    assert len(agent.messages(buyer)) == relayed


async def test_F11_without_a_live_ticket_text_is_not_relayed(esign_harness):
    buyer = esign_harness.user()
    await buyer.send("/start")
    screen = await buyer.send("hello?")
    assert "请使用下方按钮" in screen.text
    assert esign_harness.agent().topics() == {}


async def test_F11_flood_limit_on_customer_messages(esign_harness):
    buyer = esign_harness.user()
    agent = await claimed(esign_harness, buyer)
    limit = esign_harness.app.support.config.flood.messages
    for n in range(limit + 3):
        await buyer.send(f"m{n}")
    relayed = [unlabelled(m["text"]) for m in agent.messages(buyer, from_bot=True)
               if (unlabelled(m.get("text")) or "").startswith("m")]
    assert relayed == [f"m{n}" for n in range(limit)]
    warnings = [m for m in said_to(buyer) if m.get("text") == "消息发送过于频繁，请稍后再发。"]
    assert len(warnings) == 1  # said once, not for every message
    esign_harness.advance(seconds=esign_harness.app.support.config.flood.seconds)
    await buyer.send("again")
    assert unlabelled(agent.messages(buyer)[-1]["text"]) == "again"


async def test_F11_staff_talk_outside_topics_goes_nowhere(esign_harness):
    buyer = esign_harness.user()
    await contact(buyer)
    agent = esign_harness.agent()
    before = len(said_to(buyer))
    await agent.send("大家好")  # the General topic
    await agent.send("/start")
    assert len(said_to(buyer)) == before
    assert "/queue" in agent.last().text  # /start in the group is the desk's help
