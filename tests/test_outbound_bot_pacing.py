"""Bot-wide pacing of new messages (bot/runtime/outbound.py): none until Telegram answers 429,
then new messages to every chat go out at under its about 30 a second, none dropped or sent
twice; the per-chat pacing is unchanged. Time is virtual: sleeping advances it."""
import asyncio
import collections

from esign_devkit.testing.fake_telegram import FakeTelegram, FakeUser

from bot.runtime.outbound import OutboundLimits


class VirtualTime:
    def __init__(self) -> None:
        self.now = 0.0

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        await asyncio.sleep(0)


def world(chats: int):
    fake = FakeTelegram()
    for uid in range(1, chats + 1):
        fake.register_user(FakeUser(id=uid, first_name=f"U{uid}"))
    time = VirtualTime()
    limits = OutboundLimits(sleep=time.sleep, clock=time.clock)
    bot = fake.make_bot()
    bot.session.middleware(limits)
    sent_at: list[float] = []
    original = fake.call

    async def call(method, params):
        result = await original(method, params)
        if method == "sendMessage":
            sent_at.append(time.now)
        return result

    fake.call = call
    return fake, bot, time, limits, sent_at


async def test_without_a_429_new_messages_to_many_chats_are_not_held_up():
    fake, bot, time, _, _ = world(60)
    await asyncio.gather(*(bot.send_message(uid, "hi") for uid in range(1, 61)))
    assert time.now == 0
    assert sum(len(fake.messages(uid, from_bot=True)) for uid in range(1, 61)) == 60


async def test_after_a_429_new_messages_across_chats_stay_under_thirty_a_second():
    fake, bot, time, limits, sent_at = world(200)
    fake.fail_next("sendMessage", 429, retry_after=1)
    await bot.send_message(1, "first")  # Telegram pushed back: the bot-wide pacing starts
    assert limits.paced_until > time.now
    start = time.now
    await asyncio.gather(*(bot.send_message(uid, f"m{uid}") for uid in range(2, 201)))
    texts = [m["text"] for uid in range(1, 201) for m in fake.messages(uid, from_bot=True)]
    assert sorted(texts) == sorted(["first", *(f"m{uid}" for uid in range(2, 201))])  # none dropped or doubled
    per_second = collections.Counter(int(t) for t in sent_at if t >= start)
    assert max(per_second.values()) <= 30
    assert time.now - start >= (199 - 5) / 25 - 0.01  # 25 a second after a burst of 5


async def test_edits_are_not_paced_bot_wide():
    _fake, bot, time, limits, _ = world(2)
    sent = await bot.send_message(1, "screen")
    limits.paced_until = time.now + 60
    for i in range(50):
        await bot.edit_message_text(f"e{i}", chat_id=1, message_id=sent.message_id)
    assert time.now == 0
