"""Outbound limits (docs/reliability.md, row 9): a 429 is waited out, bursts to one chat are paced,
nothing is dropped or sent twice."""
import asyncio

import pytest
from aiogram.exceptions import TelegramRetryAfter
from esign_devkit.testing.fake_telegram import FakeTelegram, FakeUser

from bot.runtime.outbound import OutboundLimits


class VirtualTime:
    """A clock that sleeping advances, so the pacing is measured without waiting."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


@pytest.fixture
def world():
    fake = FakeTelegram()
    user = FakeUser(id=42, first_name="Buyer")
    fake.register_user(user)
    time = VirtualTime()
    bot = fake.make_bot()
    bot.session.middleware(OutboundLimits(sleep=time.sleep, clock=time.clock))
    return fake, bot, time


async def test_a_429_is_waited_out_and_the_message_sent_once(world):
    fake, bot, time = world
    fake.fail_next("sendMessage", 429, retry_after=7)
    await bot.send_message(42, "hello")
    assert time.sleeps == [7]
    assert [m["text"] for m in fake.messages(42, from_bot=True)] == ["hello"]


async def test_a_429_that_never_ends_is_raised_after_the_retries(world):
    fake, bot, _time = world
    for _ in range(6):
        fake.fail_next("sendMessage", 429, retry_after=1)
    with pytest.raises(TelegramRetryAfter):
        await bot.send_message(42, "hello")
    assert fake.messages(42, from_bot=True) == []


async def test_a_burst_to_one_chat_is_paced_to_about_one_a_second(world):
    fake, bot, time = world
    await asyncio.gather(*(bot.send_message(42, f"m{i}") for i in range(10)))
    texts = [m["text"] for m in fake.messages(42, from_bot=True)]
    assert sorted(texts) == sorted(f"m{i}" for i in range(10))  # none dropped, none doubled
    assert time.now == pytest.approx(7.0)  # 3 at once, then one a second for the other 7


async def test_other_chats_and_edits_are_not_held_up(world):
    fake, bot, time = world
    other = FakeUser(id=43, first_name="Other")
    fake.register_user(other)
    for i in range(3):
        await bot.send_message(42, f"m{i}")
    sent = await bot.send_message(43, "other chat")
    await bot.edit_message_text("edited", chat_id=43, message_id=sent.message_id)
    assert time.now == 0
