"""In any group but the staff group the bot says nothing and leaves (docs/security.md,
"Groups"); the staff group keeps working; nothing of a stranger's group is stored."""
from __future__ import annotations

from tests.flows.support_steps import claimed

GROUP = -1001112223334  # not the harness staff group (-1009876543210)


async def test_added_to_a_group_the_bot_leaves_without_a_word(esign_harness, redis):
    telegram = esign_harness.telegram
    telegram.add_chat(GROUP, type="supergroup", title="随便一个群")
    stranger = esign_harness.user()
    await esign_harness.feed(telegram.my_chat_member_update(stranger.fake, GROUP, "member"))
    assert GROUP in telegram.left
    assert telegram.messages(GROUP, from_bot=True) == []


async def test_commands_and_buttons_in_another_group_get_no_answer(esign_harness, redis):
    telegram = esign_harness.telegram
    telegram.add_chat(GROUP, type="group", title="老群")
    stranger = esign_harness.user()
    before = set(await redis.keys("fsm:*"))
    for text in ("/start", "购买套餐", "/quote advanced 1 0.01"):
        await esign_harness.feed(telegram.message_update(stranger.fake, text, chat_id=GROUP))
    assert telegram.messages(GROUP, from_bot=True) == []
    assert [c.params["chat_id"] for c in telegram.calls_of("leaveChat")] == [GROUP]  # once
    assert set(await redis.keys("fsm:*")) == before  # no conversation, lock or dedup key for it


async def test_removed_from_a_group_nothing_is_done(esign_harness):
    telegram = esign_harness.telegram
    telegram.add_chat(GROUP, type="supergroup")
    stranger = esign_harness.user()
    await esign_harness.feed(telegram.my_chat_member_update(stranger.fake, GROUP, "kicked", old_status="member"))
    assert not telegram.calls_of("leaveChat")


async def test_a_channel_is_left_too(esign_harness):
    telegram = esign_harness.telegram
    telegram.add_chat(GROUP, type="channel", title="频道")
    owner = esign_harness.user()
    await esign_harness.feed(telegram.my_chat_member_update(owner.fake, GROUP, "administrator"))
    assert GROUP in telegram.left


async def test_the_staff_group_keeps_working(esign_harness):
    buyer = esign_harness.user()
    agent = await claimed(esign_harness, buyer)
    screen = await agent.command("/help")
    assert "/quote" in screen.text
    assert not esign_harness.telegram.calls_of("leaveChat")


async def test_private_chats_still_answer(esign_harness):
    buyer = esign_harness.user()
    screen = await buyer.send("/start")
    assert "购买套餐" in screen.buttons
