"""Through the real dispatcher: strangers typing a victim's number in the chat
cannot spend the victim's live code nor lock them out; the victim is told to share their own
contact when strangers used up the share open to anyone, and that works."""
from __future__ import annotations

from tests.flows.steps import to_phone


async def test_strangers_typing_my_number_never_lock_me_out(esign_harness):
    victim = esign_harness.user()
    await to_phone(victim)
    await victim.share_contact()  # a code is live for the victim
    victims_code = esign_harness.sms.last_code(victim.phone)

    strangers = [esign_harness.user() for _ in range(8)]
    told = []
    for stranger in strangers:
        esign_harness.clock.advance(seconds=31)
        await to_phone(stranger)
        told.append((await stranger.send(victim.phone)).text)
    assert sum("验证码已发送至" in t for t in told) == 3  # three an hour for all strangers together
    assert all("请分享您本人的 Telegram 手机号" in t for t in told[3:])

    screen = await victim.send(victims_code)  # nobody else's request replaced it
    assert "验证成功" in screen.text and "订单确认" in screen.text


async def test_an_owner_who_typed_their_number_is_told_to_share_it(esign_harness):
    for _ in range(3):
        stranger = esign_harness.user()
        esign_harness.clock.advance(seconds=31)
        await to_phone(stranger)
        await stranger.send("+8613700137000")
    owner = esign_harness.user(phone="+8613700137000")
    esign_harness.clock.advance(seconds=31)
    await to_phone(owner)
    screen = await owner.send("137 0013 7000")
    assert "如果这是您本人的手机号，请分享您本人的 Telegram 手机号" in screen.text
    assert await esign_harness.state_of(owner) == "Phone:number"
    screen = await owner.share_contact()
    assert "验证码已发送至" in screen.text
    screen = await owner.send(esign_harness.sms.last_code(owner.phone))
    assert "验证成功" in screen.text
