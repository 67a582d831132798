"""Long polling (bot/runtime/polling.py): one user's updates are handled in order, users side by side and
never held up by another's slow update; an update is confirmed to Telegram only once handled,
a payment that could not be stored not before it is; on stop the updates in flight finish first."""
from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable

from aiogram import Dispatcher
from aiogram.types import Message
from esign_devkit.testing.fake_telegram import FakeTelegram, FakeUser

from bot.errors import PaymentNotStored
from bot.runtime.polling import poll


def recording_dispatcher(handled: list[tuple[int, str]], gate: asyncio.Event | None = None) -> Dispatcher:
    dp = Dispatcher()

    @dp.message()
    async def record(message: Message) -> None:
        if gate is not None and message.from_user.id == 1:
            await gate.wait()
        await asyncio.sleep(random.uniform(0, 0.005))  # concurrent handling would reorder these
        handled.append((message.from_user.id, message.text))

    return dp


async def eventually(condition: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


def pending_texts(fake: FakeTelegram) -> list[str]:
    return [u["message"]["text"] for u in fake.pending_updates]


async def test_twenty_updates_from_one_user_are_handled_in_order_and_users_side_by_side():
    fake = FakeTelegram()
    alice, bob = FakeUser(id=1, first_name="A"), FakeUser(id=2, first_name="B")
    for user in (alice, bob):
        fake.register_user(user)
    for i in range(20):  # arriving interleaved, fetched in one batch
        fake.push_update(fake.message_update(alice, f"a{i}"))
        fake.push_update(fake.message_update(bob, f"b{i}"))
    handled: list[tuple[int, str]] = []
    stop = asyncio.Event()
    polling = asyncio.create_task(poll(recording_dispatcher(handled), fake.make_bot(), stop, timeout=0))
    await eventually(lambda: len(handled) == 40, "the 40 updates handled")
    stop.set()
    await polling
    assert [t for u, t in handled if u == 1] == [f"a{i}" for i in range(20)]
    assert [t for u, t in handled if u == 2] == [f"b{i}" for i in range(20)]
    users = [u for u, _ in handled]  # side by side: neither waited for all of the other's
    assert users.index(2) < len(users) - 1 - users[::-1].index(1)
    assert users.index(1) < len(users) - 1 - users[::-1].index(2)
    assert fake.pending_updates == []


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
    await asyncio.sleep(0.3)
    polling.cancel()  # the process dies while the updates are being handled
    await asyncio.gather(polling, return_exceptions=True)
    gate.set()
    await asyncio.sleep(0.05)
    assert handled == []  # nothing of the dead process goes on
    assert pending_texts(fake) == ["m0", "m1", "m2"]  # Telegram resends them

    polling = asyncio.create_task(poll(recording_dispatcher(handled), fake.make_bot(), stop, timeout=0))
    await eventually(lambda: not fake.pending_updates, "the updates confirmed")
    stop.set()
    await polling
    assert handled == [(1, "m0"), (1, "m1"), (1, "m2")]


async def test_a_slow_update_holds_up_neither_other_users_nor_fetching_and_stays_unconfirmed():
    fake = FakeTelegram()
    alice, bob = FakeUser(id=1, first_name="A"), FakeUser(id=2, first_name="B")
    for user in (alice, bob):
        fake.register_user(user)
    handled: list[tuple[int, str]] = []
    gate = asyncio.Event()  # Alice's updates wait on it
    stop = asyncio.Event()
    polling = asyncio.create_task(poll(recording_dispatcher(handled, gate), fake.make_bot(), stop, timeout=1))
    fake.push_update(fake.message_update(alice, "a0"))
    await asyncio.sleep(0.2)
    for i in range(3):  # Bob writes while Alice's update is stuck, one after the other
        fake.push_update(fake.message_update(bob, f"b{i}"))
        await eventually(lambda i=i: (2, f"b{i}") in handled, f"Bob's b{i} handled while Alice's update is stuck")
    fake.push_update(fake.message_update(alice, "a1"))  # behind her stuck one
    await asyncio.sleep(0.3)
    assert handled == [(2, "b0"), (2, "b1"), (2, "b2")]
    assert pending_texts(fake)[0] == "a0"  # the offset stays at the oldest unfinished update

    gate.set()
    await eventually(lambda: len(handled) == 5 and not fake.pending_updates, "Alice's updates handled and confirmed")
    assert [t for u, t in handled if u == 1] == ["a0", "a1"]
    stop.set()
    await polling


async def test_a_payment_not_stored_is_not_confirmed_and_tried_again_until_it_is():
    fake = FakeTelegram()
    buyer = FakeUser(id=1, first_name="A")
    fake.register_user(buyer)
    tries: list[str] = []
    redis_up = asyncio.Event()
    dp = Dispatcher()

    @dp.message()
    async def pay(message: Message) -> None:
        tries.append(message.text)
        if message.text == "payment" and not redis_up.is_set():
            raise PaymentNotStored(0)

    stop = asyncio.Event()
    polling = asyncio.create_task(poll(dp, fake.make_bot(), stop, timeout=1))
    fake.push_update(fake.message_update(buyer, "payment"))
    await eventually(lambda: tries.count("payment") >= 3, "the payment tried three times", timeout=15)
    assert pending_texts(fake) == ["payment"]  # never confirmed meanwhile

    redis_up.set()
    await eventually(lambda: not fake.pending_updates, "the payment confirmed once stored", timeout=15)
    stop.set()
    await polling
    assert tries[-1] == "payment" and len(tries) >= 4


async def test_stop_lets_the_updates_in_flight_finish_then_confirms_them():
    fake = FakeTelegram()
    buyer = FakeUser(id=1, first_name="A")
    fake.register_user(buyer)
    handled: list[tuple[int, str]] = []
    gate = asyncio.Event()
    stop = asyncio.Event()
    polling = asyncio.create_task(poll(recording_dispatcher(handled, gate), fake.make_bot(), stop, timeout=1))
    fake.push_update(fake.message_update(buyer, "in flight"))
    await asyncio.sleep(0.3)
    stop.set()  # SIGTERM
    await asyncio.sleep(0.3)
    assert not polling.done() and handled == []  # still finishing it
    gate.set()
    await asyncio.wait_for(polling, 5)
    assert handled == [(1, "in flight")]
    assert fake.pending_updates == []  # confirmed before exiting


async def test_what_runs_past_the_grace_period_is_cancelled_and_not_confirmed():
    fake = FakeTelegram()
    buyer = FakeUser(id=1, first_name="A")
    fake.register_user(buyer)
    handled: list[tuple[int, str]] = []
    stop = asyncio.Event()
    polling = asyncio.create_task(poll(recording_dispatcher(handled, asyncio.Event()), fake.make_bot(), stop,
                                       timeout=1, grace=0.5))
    fake.push_update(fake.message_update(buyer, "stuck"))
    await asyncio.sleep(0.3)
    stop.set()
    await asyncio.wait_for(polling, 5)
    assert handled == [] and pending_texts(fake) == ["stuck"]
