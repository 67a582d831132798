"""FSM storage (bot/state/storage.py): aiogram's RedisStorage behind a unit of work, on real Redis."""
from __future__ import annotations

import asyncio
import json

import pytest
from aiogram.fsm.state import State, StatesGroup
from aiogram.fsm.storage.base import StorageKey
from aiogram.fsm.storage.redis import RedisEventIsolation, RedisStorage

from bot.state.storage import SessionIsolation, UnitOfWorkStorage, build_storage

KEY = StorageKey(bot_id=42, chat_id=1, user_id=1)
OTHER = StorageKey(bot_id=42, chat_id=2, user_id=2)
STATE_KEY, DATA_KEY = "fsm:{42:1:1}:state", "fsm:{42:1:1}:data"
TTL = 600


class Demo(StatesGroup):
    first = State()
    second = State()


@pytest.fixture
async def storage(redis):
    storage, _ = build_storage(redis, TTL)
    yield storage
    # The storage shares the test's client; closing it here would close the fixture's too.


class Boom(Exception):
    pass


class _Spy:
    """Counts the writes that reach the inner storage."""

    def __init__(self, storage: UnitOfWorkStorage) -> None:
        self.calls: list[tuple[str, StorageKey, object]] = []
        inner = storage.inner
        real_state, real_data, real_data_write = inner.set_state, inner.set_data, inner.data_write

        async def set_state(key, state=None):
            self.calls.append(("state", key, state))
            await real_state(key, state)

        async def set_data(key, data):
            self.calls.append(("data", key, dict(data)))
            await real_data(key, data)

        def data_write(key, text):  # a unit's data goes out as the JSON text it holds
            self.calls.append(("data", key, json.loads(text) if text else {}))
            return real_data_write(key, text)

        inner.set_state, inner.set_data, inner.data_write = set_state, set_data, data_write


def test_build_storage_wraps_redis_storage_with_the_ttl(redis):
    storage, isolation = build_storage(redis, TTL)
    assert isinstance(storage, UnitOfWorkStorage)
    assert isinstance(storage.inner, RedisStorage) and isinstance(isolation, RedisEventIsolation)
    assert storage.inner.redis is redis
    assert (storage.inner.state_ttl, storage.inner.data_ttl) == (TTL, TTL)
    assert isolation.key_builder is storage.inner.key_builder


async def test_keys_include_the_bot_id(storage, redis):
    await storage.set_state(KEY, Demo.first)
    await storage.set_data(KEY, {"a": 1})
    assert sorted([k async for k in redis.scan_iter(match="fsm:*")]) == [DATA_KEY, STATE_KEY]

    await storage.set_state(StorageKey(bot_id=43, chat_id=1, user_id=1), "other")
    assert await redis.get("fsm:{43:1:1}:state") == "other"
    assert await storage.get_state(KEY) == Demo.first.state


async def test_outside_a_unit_writes_go_straight_through(storage, redis):
    await storage.set_state(KEY, Demo.first)
    assert await redis.get(STATE_KEY) == "Demo:first"
    assert 0 < await redis.ttl(STATE_KEY) <= TTL

    await storage.set_data(KEY, {"cart": {"edition": "advanced"}})
    assert json.loads(await redis.get(DATA_KEY)) == {"cart": {"edition": "advanced"}}
    assert 0 < await redis.ttl(DATA_KEY) <= TTL

    assert await storage.get_state(KEY) == "Demo:first"
    assert await storage.get_data(KEY) == {"cart": {"edition": "advanced"}}

    await storage.set_state(KEY, None)
    await storage.set_data(KEY, {})
    assert [k async for k in redis.scan_iter(match="fsm:*")] == []


async def test_inside_a_unit_writes_are_buffered_and_flushed_once(storage, redis):
    spy = _Spy(storage)
    async with storage.unit_of_work():
        await storage.set_state(KEY, Demo.first)
        await storage.set_data(KEY, {"step": 1})
        await storage.set_state(KEY, Demo.second)
        await storage.set_data(KEY, {"step": 2})
        await storage.set_data(KEY, {"step": 3, "cart": {"years": 2}})

        assert [k async for k in redis.scan_iter(match="fsm:*")] == []  # nothing written yet
        assert spy.calls == []
        # ...but the unit reads its own writes
        assert await storage.get_state(KEY) == "Demo:second"
        assert await storage.get_data(KEY) == {"step": 3, "cart": {"years": 2}}

    assert spy.calls == [("state", KEY, "Demo:second"), ("data", KEY, {"step": 3, "cart": {"years": 2}})]
    assert await redis.get(STATE_KEY) == "Demo:second"
    assert json.loads(await redis.get(DATA_KEY)) == {"step": 3, "cart": {"years": 2}}
    assert 0 < await redis.ttl(STATE_KEY) <= TTL and 0 < await redis.ttl(DATA_KEY) <= TTL


async def test_a_unit_that_only_reads_writes_nothing(storage, redis):
    await storage.set_state(KEY, "s")
    await storage.set_data(KEY, {"x": 1})
    spy = _Spy(storage)
    async with storage.unit_of_work():
        assert await storage.get_state(KEY) == "s"
        assert await storage.get_data(KEY) == {"x": 1}
    assert spy.calls == []


async def test_when_the_body_raises_nothing_is_written(storage, redis):
    await storage.set_state(KEY, Demo.first)
    await storage.set_data(KEY, {"step": 1})
    before = {k: await redis.get(k) async for k in redis.scan_iter(match="fsm:*")}

    with pytest.raises(Boom):
        async with storage.unit_of_work():
            await storage.set_state(KEY, Demo.second)
            await storage.set_data(KEY, {"step": 2})
            await storage.set_state(OTHER, "other")
            raise Boom

    assert {k: await redis.get(k) async for k in redis.scan_iter(match="fsm:*")} == before
    assert await storage.get_state(KEY) == "Demo:first"
    assert await storage.get_data(KEY) == {"step": 1}
    assert await storage.get_state(OTHER) is None


async def test_clearing_inside_a_unit_deletes_on_flush(storage, redis):
    await storage.set_state(KEY, Demo.first)
    await storage.set_data(KEY, {"step": 1})
    async with storage.unit_of_work():
        await storage.set_state(KEY, None)
        await storage.set_data(KEY, {})
        assert await storage.get_state(KEY) is None and await storage.get_data(KEY) == {}
        assert await redis.get(STATE_KEY) == "Demo:first"
    assert [k async for k in redis.scan_iter(match="fsm:*")] == []


async def test_only_what_changed_is_flushed(storage, redis):
    await storage.set_state(KEY, "before")
    async with storage.unit_of_work():
        assert await storage.get_state(KEY) == "before"
        await storage.set_data(KEY, {"x": 1})
        await redis.set(STATE_KEY, "changed elsewhere")  # another writer, meanwhile
    assert await redis.get(STATE_KEY) == "changed elsewhere"  # the unit did not write a stale state
    assert json.loads(await redis.get(DATA_KEY)) == {"x": 1}


async def test_several_keys_in_one_unit(storage, redis):
    async with storage.unit_of_work():
        await storage.set_state(KEY, "a")
        await storage.set_state(OTHER, "b")
    assert await redis.get(STATE_KEY) == "a"
    assert await redis.get("fsm:{42:2:2}:state") == "b"


async def test_data_read_in_a_unit_is_a_copy(storage, redis):
    await storage.set_data(KEY, {"cart": {"years": 1}, "tags": ["a"]})
    async with storage.unit_of_work():
        data = await storage.get_data(KEY)
        data["cart"]["years"] = 3  # changed in place, never saved
        data["tags"].append("b")
        assert await storage.get_data(KEY) == {"cart": {"years": 1}, "tags": ["a"]}

        mine = {"cart": {"years": 2}}
        await storage.set_data(KEY, mine)
        mine["cart"]["years"] = 9  # changed after saving: not what was saved
        assert await storage.get_data(KEY) == {"cart": {"years": 2}}
    assert json.loads(await redis.get(DATA_KEY)) == {"cart": {"years": 2}}


async def test_concurrent_units_do_not_share_buffers(storage, redis):
    async def ok():
        async with storage.unit_of_work():
            await storage.set_state(KEY, "ok")
            await asyncio.sleep(0.01)

    async def fails():
        async with storage.unit_of_work():
            await storage.set_state(OTHER, "lost")
            await asyncio.sleep(0.005)
            raise Boom

    results = await asyncio.gather(ok(), fails(), return_exceptions=True)
    assert results[0] is None and isinstance(results[1], Boom)
    assert await redis.get(STATE_KEY) == "ok"
    assert await redis.get("fsm:{42:2:2}:state") is None


async def test_after_a_unit_writes_go_straight_through_again(storage, redis):
    async with storage.unit_of_work():
        await storage.set_state(KEY, "inside")
    await storage.set_state(KEY, "outside")
    assert await redis.get(STATE_KEY) == "outside"


async def test_data_as_text_is_read_and_stored_as_is_inside_a_unit(storage, redis):
    await storage.set_data(KEY, {"session": {"phone": "+8613800138000"}})
    async with storage.unit_of_work():
        assert await storage.get_data_text(KEY) == '{"session":{"phone":"+8613800138000"}}'
        await storage.set_data_text(KEY, '{"session":{"enterprise_name":"深圳测试"}}')
        assert await storage.get_data(KEY) == {"session": {"enterprise_name": "深圳测试"}}
        assert json.loads(await redis.get(DATA_KEY)) == {"session": {"phone": "+8613800138000"}}  # not yet
    assert await redis.get(DATA_KEY) == '{"session":{"enterprise_name":"深圳测试"}}'
    assert 0 < await redis.ttl(DATA_KEY) <= TTL

    async with storage.unit_of_work():
        await storage.set_data_text(KEY, None)  # empty: the key goes
    assert await redis.exists(DATA_KEY) == 0
    assert await storage.get_data_text(KEY) is None  # outside a unit: read from Redis
    await storage.set_data_text(KEY, '{"x":1}')  # outside a unit: written at once
    assert json.loads(await redis.get(DATA_KEY)) == {"x": 1}


# --- the per-user lock: short-lived, renewed while its holder runs ----------------------------

LOCK_KEY = "fsm:{42:1:1}:lock"


async def test_a_live_holder_keeps_its_lock_past_the_ttl_and_a_dead_ones_lock_runs_out(redis):
    storage, _ = build_storage(redis, TTL)
    isolation = SessionIsolation(redis, storage, storage.inner.key_builder, lock_ttl_ms=300)
    order: list[str] = []

    async def slow_holder() -> None:
        async with isolation.session(KEY):
            order.append("first in")
            await asyncio.sleep(1.0)  # more than three TTLs: renewed meanwhile
            order.append("first out")

    async def next_update() -> None:
        await asyncio.sleep(0.1)
        async with isolation.session(KEY):
            order.append("second")

    await asyncio.gather(slow_holder(), next_update())
    assert order == ["first in", "first out", "second"]
    assert await redis.exists(LOCK_KEY) == 0

    # A process that died holding it: nothing renews it, and it runs out after one TTL.
    await redis.set(LOCK_KEY, "dead-process:1", px=300)
    started = asyncio.get_running_loop().time()
    async with isolation.session(KEY):
        waited = asyncio.get_running_loop().time() - started
    assert 0.15 < waited < 1.0


async def test_a_renewal_never_extends_a_lock_that_is_no_longer_its_own(redis):
    storage, _ = build_storage(redis, TTL)
    isolation = SessionIsolation(redis, storage, storage.inner.key_builder, lock_ttl_ms=300)
    async with isolation.session(KEY):
        await redis.set(LOCK_KEY, "someone-else", px=5_000)  # it ran out and another took it
        await asyncio.sleep(0.25)  # a renewal ran meanwhile
        assert 4_000 < await redis.pttl(LOCK_KEY) <= 5_000
    assert await redis.get(LOCK_KEY) == "someone-else"  # nor released it


async def test_a_read_only_unit_reads_and_drops_its_writes(storage, redis, caplog):
    await storage.set_state(KEY, Demo.first)
    async with storage.read_only_unit():
        assert await storage.get_state(KEY) == Demo.first.state
        await storage.set_state(KEY, Demo.second)
    assert await redis.get(STATE_KEY) == Demo.first.state
    assert "fsm.write_dropped" in caplog.text
