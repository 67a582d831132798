"""The help desk as both sides read it: the customer sees the agent's alias wherever the service
speaks (never a bare "客服" once an alias is set); agents see the customer's messages labelled as
the customer's; the intake card's dates carry the year; 购买咨询 answers with one message
carrying 结束咨询, not two."""
import re

from tests.flows import steps
from tests.flows.support_steps import CLAIM, END, banner_pinned, card, consult_flagship, said_to


async def test_F11_the_alias_an_agent_set_is_what_the_customer_sees_throughout(esign_harness):
    buyer = esign_harness.user(name="Alice")
    await consult_flagship(buyer)
    agent = esign_harness.agent(name="Li Lei", alias=None)
    await agent.command("/alias 小李")  # set in the group, as an agent does
    before = said_to(buyer)[-1]["message_id"]

    await agent.tap(CLAIM, topic=buyer)
    await agent.send("您好", topic=buyer)
    await agent.command("/quote flagship 1", topic=buyer)
    await agent.command("/close", topic=buyer)

    told = [m.get("text") or "" for m in said_to(buyer) if m["message_id"] > before]
    assert told[0] == "👩‍💼 小李已接入，正在为您服务。"
    assert told[1] == "💬 小李：\n您好"
    assert told[2].startswith("🧾 小李为您创建了订单 ")
    assert told[3].startswith("✅ 小李已结束本次咨询")
    for text in told:  # the bare word stands for an agent without an alias only
        assert not re.search(r"(^|[^小])客服(为您|已结束|：)", text), text
        assert "Li Lei" not in text


async def test_F11_english_customer_sees_the_alias_too(esign_harness):
    buyer = esign_harness.user("en")
    await buyer.send("/start")
    await buyer.tap("Contact customer service")
    agent = esign_harness.agent(name="Li Lei", alias="Lily")
    await agent.tap(CLAIM, topic=buyer)
    await agent.command("/close", topic=buyer)
    assert said_to(buyer)[-1]["text"].startswith("✅ Lily has ended the consultation.")


async def test_F11_the_customer_s_messages_in_the_topic_carry_a_customer_label(esign_harness):
    buyer = esign_harness.user(name="Alice")
    await consult_flagship(buyer)
    agent = esign_harness.agent(alias="客服小李")
    await agent.tap(CLAIM, topic=buyer)
    await agent.send("您好，请问需要几年？", topic=buyer)

    await buyer.send("两年")
    assert agent.messages(buyer)[-1]["text"] == "👤 客户 Alice：\n两年"
    assert agent.messages(buyer)[-1]["from"]["id"] == esign_harness.telegram.bot_id
    await buyer.send_media("photo", "营业执照")
    assert agent.messages(buyer)[-1]["caption"] == "👤 客户 Alice：\n营业执照"
    await buyer.send_sticker()
    label, sticker = agent.messages(buyer)[-2:]
    assert label["text"] == "👤 客户 Alice：" and "sticker" in sticker  # a sticker takes no caption

    mine = [m for m in buyer.telegram.messages(buyer.id, from_bot=False) if m.get("text") == "两年"][-1]
    await buyer.edit(mine["message_id"], "三年")
    assert any(m.get("text") == "👤 客户 Alice：\n三年" for m in agent.messages(buyer))  # the label kept
    # The agent's own words stay unlabelled: the two are told apart at a glance.
    assert agent.messages(buyer, from_bot=False)[-1]["text"] == "您好，请问需要几年？"


async def test_F11_the_intake_card_shows_the_year_of_an_expiry(esign_harness):
    buyer = esign_harness.user()
    await esign_harness.enterprise_on(steps.ENTERPRISE_NAME, "advanced", expires_in_days=400,
                                      members={buyer.phone: "super_admin"})
    await steps.to_phone(buyer)
    await buyer.share_contact()
    await buyer.send_code()
    await buyer.tap("联系客服")
    agent = esign_harness.agent()
    text = card(agent, buyer)
    assert "高级版，至 2027-02-09" in text, text  # 400 days after 2026-01-05 (Beijing), year and all


async def test_R2_consultation_answers_with_one_message_carrying_end(esign_harness):
    buyer = esign_harness.user()
    await steps.to_editions(buyer)
    await buyer.tap(steps.FLAGSHIP)
    before = len(said_to(buyer))
    await buyer.tap("购买咨询")

    new = said_to(buyer)[before:]
    with_end = [m for m in new if any(b["text"] == END for row in (m.get("reply_markup") or {}).get("inline_keyboard", [])
                                      for b in row)]
    assert len(with_end) == 1, [m.get("text") for m in new]
    assert with_end[0]["text"].startswith("☎️ 联系客服 · 购买咨询")
    assert banner_pinned(buyer)  # the pinned reminder is one line, with no second 结束咨询
    banner = [m for m in new if m is not with_end[0]]
    assert all(len((m.get("text") or "").splitlines()) == 1 for m in banner)


async def test_F11_a_full_length_message_keeps_its_words_and_gets_the_label_above(esign_harness):
    buyer = esign_harness.user(name="Alice")
    await consult_flagship(buyer)
    agent = esign_harness.agent(alias="客服小李")
    await agent.tap(CLAIM, topic=buyer)
    long = "长" * 4096  # Telegram's longest message: no room for a label inside it
    await buyer.send(long)
    label, copy = agent.messages(buyer)[-2:]
    assert label["text"] == "👤 客户 Alice：" and copy["text"] == long
