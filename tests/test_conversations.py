"""Conversations in Redis (bot/state/conversations.py): one way to open one and change it, on
real Redis — the user's lock, the dedup mark, the state and data read in one round trip and
stored in one more, nothing stored when the body raises."""
from __future__ import annotations

import asyncio
import json

import pytest
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.fsm.storage.base import StorageKey

from bot.state.conversations import ConversationStorage, ConversationStore

KEY = StorageKey(bot_id=42, chat_id=1, user_id=1)
OTHER = StorageKey(bot_id=42, chat_id=2, user_id=2)
STATE_KEY, DATA_KEY, LOCK_KEY = "fsm:{42:1:1}:state", "fsm:{42:1:1}:data", "fsm:{42:1:1}:lock"
TTL = 600


class Demo(StatesGroup):
    first = State()
    second = State()


class Boom(Exception):
    pass


@pytest.fixture
def store(redis):
    return ConversationStore(redis, ttl_seconds=TTL, dedup_seconds=60)


def context(store: ConversationStore, key: StorageKey = KEY) -> FSMContext:
    return FSMContext(ConversationStorage(store), key)


async def test_keys_carry_the_bot_id_and_one_hash_tag_per_conversation(store, redis):
    await context(store).set_state(Demo.first)
    assert await redis.get(STATE_KEY) == Demo.first.state and 0 < await redis.ttl(STATE_KEY) <= TTL
    assert store.keys.seen(KEY, 7) == "fsm:{42:1:1}:seen:7"


async def test_what_an_open_conversation_changes_is_stored_once_when_it_closes(store, redis):
    await redis.set(DATA_KEY, json.dumps({"session": {"phone": "+8613800138000"}}))
    async with store.open(KEY, update_id=1) as conversation:
        assert json.loads(conversation.data) == {"session": {"phone": "+8613800138000"}}
        fsm = context(store)
        await fsm.set_state(Demo.first)
        await fsm.set_data({"session": {"phone": "+8613800138000", "order_id": "o1"}})
        assert await fsm.get_state() == Demo.first.state  # read back from the open conversation
        assert await redis.get(STATE_KEY) is None  # nothing sent yet
        assert await redis.get(LOCK_KEY) is not None
    assert await redis.get(STATE_KEY) == Demo.first.state
    assert json.loads(await redis.get(DATA_KEY)) == {"session": {"phone": "+8613800138000", "order_id": "o1"}}
    assert await redis.get("fsm:{42:1:1}:seen:1") == "1"  # marked handled
    assert await redis.exists(LOCK_KEY) == 0


async def test_when_the_body_raises_nothing_is_stored_marked_or_left_locked(store, redis):
    await context(store).set_state(Demo.first)
    with pytest.raises(Boom):
        async with store.open(KEY, update_id=2):
            await context(store).set_state(Demo.second)
            raise Boom
    assert await redis.get(STATE_KEY) == Demo.first.state
    assert await redis.exists("fsm:{42:1:1}:seen:2", LOCK_KEY) == 0


async def test_an_update_handled_already_opens_nothing(store, redis):
    async with store.open(KEY, update_id=3):
        pass
    async with store.open(KEY, update_id=3) as again:
        assert again is None
    assert await redis.exists(LOCK_KEY) == 0


async def test_clearing_deletes_and_an_unchanged_conversation_writes_nothing(store, redis):
    await context(store).set_state(Demo.first)
    async with store.open(KEY) as conversation:
        assert conversation.state == Demo.first.state and not conversation.state_changed
    assert await redis.get(STATE_KEY) == Demo.first.state
    async with store.open(KEY):
        await context(store).clear()
    assert await redis.exists(STATE_KEY, DATA_KEY) == 0


async def test_one_users_updates_wait_for_each_other_and_other_users_do_not(store):
    order: list[str] = []

    async def first() -> None:
        async with store.open(KEY, update_id=10):
            order.append("first in")
            await asyncio.sleep(0.2)
            order.append("first out")

    async def second() -> None:
        await asyncio.sleep(0.05)
        async with store.open(KEY, update_id=11):
            order.append("second")

    async def other_user() -> None:
        await asyncio.sleep(0.05)
        async with store.open(OTHER, update_id=12):
            order.append("other")

    await asyncio.gather(first(), second(), other_user())
    assert order == ["first in", "other", "first out", "second"]


async def test_conversations_open_at_once_in_one_task_keep_their_own_changes(store, redis):
    async with store.open(KEY), store.open(OTHER):  # the help desk moves a customer's conversation
        await context(store, KEY).set_state(Demo.first)
        await context(store, OTHER).set_state(Demo.second)
    assert await redis.get(STATE_KEY) == Demo.first.state
    assert await redis.get("fsm:{42:2:2}:state") == Demo.second.state


async def test_read_only_reads_without_the_lock_and_drops_its_writes(store, redis, caplog):
    await context(store).set_state(Demo.first)
    async with (
        store.open(KEY, update_id=20),  # another update of the user holds the lock
        store.open(KEY, read_only=True) as conversation,
    ):
        assert conversation.state == Demo.first.state
        await context(store).set_state(Demo.second)
    assert await redis.get(STATE_KEY) == Demo.first.state
    assert "conversation.write_dropped" in caplog.text


async def test_a_live_holder_keeps_its_lock_past_the_ttl_and_a_dead_ones_lock_runs_out(redis):
    store = ConversationStore(redis, ttl_seconds=TTL, dedup_seconds=60, lock_ttl_ms=300)
    order: list[str] = []

    async def slow_holder() -> None:
        async with store.open(KEY):
            order.append("first in")
            await asyncio.sleep(1.0)  # more than three TTLs: renewed meanwhile
            order.append("first out")

    async def next_update() -> None:
        await asyncio.sleep(0.1)
        async with store.open(KEY):
            order.append("second")

    await asyncio.gather(slow_holder(), next_update())
    assert order == ["first in", "first out", "second"]
    assert await redis.exists(LOCK_KEY) == 0

    # A process that died holding it: nothing renews it, and it runs out after one TTL.
    await redis.set(LOCK_KEY, "dead-process:1", px=300)
    started = asyncio.get_running_loop().time()
    async with store.open(KEY):
        waited = asyncio.get_running_loop().time() - started
    assert 0.15 < waited < 1.0


async def test_a_renewal_never_extends_a_lock_that_is_no_longer_its_own(redis):
    store = ConversationStore(redis, ttl_seconds=TTL, dedup_seconds=60, lock_ttl_ms=300)
    async with store.open(KEY):
        await redis.set(LOCK_KEY, "someone-else", px=5_000)  # it ran out and another took it
        await asyncio.sleep(0.25)  # a renewal ran meanwhile
        assert 4_000 < await redis.pttl(LOCK_KEY) <= 5_000
    assert await redis.get(LOCK_KEY) == "someone-else"  # nor released it
