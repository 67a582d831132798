"""Issue 6, guarantees 3 and 7 (bot/polling.py): one user's updates are handled in order,
users at the same time, and a batch is confirmed to Telegram only once it was handled."""
from __future__ import annotations

import asyncio
import random
import time

from aiogram import Dispatcher
from aiogram.types import Message

from bot.polling import handle_batch, poll
from bot.testing.fake_telegram import FakeTelegram, FakeUser


def recording_dispatcher(handled: list[tuple[int, str]], gate: asyncio.Event | None = None) -> Dispatcher:
    dp = Dispatcher()

    @dp.message()
    async def record(message: Message) -> None:
        if gate is not None:
            await gate.wait()
        await asyncio.sleep(random.uniform(0, 0.005))  # concurrent handling would reorder these
        handled.append((message.from_user.id, message.text))

    return dp


async def test_twenty_updates_from_one_user_are_handled_in_order_and_users_side_by_side():
    fake = FakeTelegram()
    alice, bob = FakeUser(id=1, first_name="A"), FakeUser(id=2, first_name="B")
    updates = []
    for i in range(20):  # arriving interleaved, within the same batch
        updates += [fake.message_update(alice, f"a{i}"), fake.message_update(bob, f"b{i}")]
    handled: list[tuple[int, str]] = []
    started = time.perf_counter()
    await handle_batch(recording_dispatcher(handled), fake.make_bot(), updates)
    elapsed = time.perf_counter() - started
    assert [t for u, t in handled if u == 1] == [f"a{i}" for i in range(20)]
    assert [t for u, t in handled if u == 2] == [f"b{i}" for i in range(20)]
    assert elapsed < 20 * 0.005 * 2 * 0.9  # the two users did not wait for each other


async def test_a_batch_is_confirmed_only_after_it_was_handled():
    fake = FakeTelegram()
    buyer = FakeUser(id=1, first_name="A")
    fake.register_user(buyer)
    for i in range(3):
        fake.push_update(fake.message_update(buyer, f"m{i}"))
    handled: list[tuple[int, str]] = []
    gate = asyncio.Event()
    stop = asyncio.Event()
    polling = asyncio.create_task(poll(recording_dispatcher(handled, gate), fake.make_bot(), stop, timeout=0))
    await asyncio.sleep(0.1)
    polling.cancel()  # the process dies while the batch is being handled
    await asyncio.gather(polling, return_exceptions=True)
    assert handled == []
    assert [u["message"]["text"] for u in fake.pending_updates] == ["m0", "m1", "m2"]  # Telegram resends them

    gate.set()
    polling = asyncio.create_task(poll(recording_dispatcher(handled), fake.make_bot(), stop, timeout=0))
    for _ in range(100):
        if not fake.pending_updates:
            break
        await asyncio.sleep(0.02)
    stop.set()
    await polling
    assert handled == [(1, "m0"), (1, "m1"), (1, "m2")]
    assert fake.pending_updates == []  # confirmed once handled
