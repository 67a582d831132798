"""FSM storage: aiogram's RedisStorage, written once per update and only when it succeeds.

Inside a unit of work (one update), reads are cached and writes buffered; the buffer is
flushed when the unit ends normally and dropped when it raises, so a failed update leaves
the conversation exactly as it was. A unit opened inside another joins it (its writes are
stored when the outermost one ends; if the inner one raises, what it wrote is rolled back).

Round trips (docs/performance.md): the per-user lock (`SessionIsolation`) costs one round trip
in and one out. In: one script takes the lock, checks that the update was not handled
already, and reads the state and the data; the unit starts with them, so reading them costs
nothing more. Out: one script stores what changed, marks the update handled and releases
the lock. Keys are `fsm:{<bot>:<chat>:<user>}:state|data|lock|seen:<update_id>`
(TaggedKeyBuilder): one hash tag per conversation, so on Redis Cluster both scripts touch one
slot. aiogram's own RedisStorage reads what this writes when given the same key builder.
"""
from __future__ import annotations

import asyncio
import itertools
import json
import logging
import secrets
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

from aiogram.exceptions import DataNotDictLikeError
from aiogram.fsm.state import State
from aiogram.fsm.storage.base import DEFAULT_DESTINY, BaseStorage, DefaultKeyBuilder, StorageKey
from aiogram.fsm.storage.redis import RedisEventIsolation, RedisStorage
from redis.asyncio import Redis

log = logging.getLogger(__name__)

_MISSING: Any = object()
# A live holder renews its lock (LockKeeper); one whose process died frees the user when this
# runs out, well before a redelivered payment or a pre-checkout (answered within 10 s) needs it.
LOCK_TTL_MS = 8_000
LOCK_RETRY_FIRST, LOCK_RETRY_MAX = 0.002, 0.05  # seconds between tries while another update holds it
# A lock's token only has to differ from every other holder's: a random id of this process and
# a counter (a fresh random token per update cost a system call each).
_PROCESS_TOKEN = secrets.token_hex(8)
_lock_numbers = itertools.count()


@dataclass
class _Record:
    state: Any = _MISSING  # str | None once known
    data: Any = _MISSING  # JSON text | None (empty) once known
    dirty_state: bool = False
    dirty_data: bool = False


@dataclass
class _Unit:
    records: dict[StorageKey, _Record] = field(default_factory=dict)


_current_unit: ContextVar[_Unit | None] = ContextVar("fsm_unit_of_work", default=None)
# While a unit is flushed, BatchedRedisStorage queues its writes here instead of sending them.
_batch: ContextVar[list[tuple[str, str, str, str]] | None] = ContextVar("fsm_write_batch", default=None)

# KEYS: lock, seen, then one key per write (all of one conversation: one hash slot; an unused
# lock or seen is any key of it). ARGV: lock token ('' = no lock to release), seen ttl
# in seconds ('' = mark nothing), then per write: op ('set' | 'del'), value, ttl in seconds ('' = none).
_FLUSH = """
for i = 3, #KEYS do
  local j = (i - 3) * 3 + 3
  if ARGV[j] == 'del' then
    redis.call('DEL', KEYS[i])
  elseif ARGV[j + 2] == '' then
    redis.call('SET', KEYS[i], ARGV[j + 1])
  else
    redis.call('SET', KEYS[i], ARGV[j + 1], 'EX', ARGV[j + 2])
  end
end
if ARGV[2] ~= '' then redis.call('SET', KEYS[2], '1', 'EX', ARGV[2]) end
if ARGV[1] ~= '' and redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1
"""

# KEYS: lock. ARGV: token, lock ttl in ms. Extends the lock only while it is still this holder's.
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""

# KEYS: lock, state, data, seen. ARGV: token, lock ttl in ms, '1' to check seen.
# Returns {2} when the update was handled already, {0} when another holds the lock, else
# {1, state, data} with the lock taken.
_ACQUIRE = """
if ARGV[3] == '1' and redis.call('EXISTS', KEYS[4]) == 1 then return {2} end
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return {0} end
return {1, redis.call('GET', KEYS[2]), redis.call('GET', KEYS[3])}
"""


class TaggedKeyBuilder(DefaultKeyBuilder):
    """aiogram's DefaultKeyBuilder (bot id included) with the conversation's identity as a Redis
    Cluster hash tag: `fsm:{<bot>:<chat>:<user>}:<part>`, plus the update-handled marks."""

    def __init__(self, prefix: str = "fsm") -> None:
        super().__init__(prefix=prefix, with_bot_id=True)

    def build(self, key: StorageKey, part: str | None = None) -> str:  # type: ignore[override]
        identity = [str(key.bot_id)]
        if key.business_connection_id:
            identity.append(str(key.business_connection_id))
        identity.append(str(key.chat_id))
        if key.thread_id:
            identity.append(str(key.thread_id))
        identity.append(str(key.user_id))
        parts = [self.prefix, "{" + ":".join(identity) + "}"]
        if key.destiny != DEFAULT_DESTINY:
            parts.append(key.destiny)
        if part:
            parts.append(part)
        return ":".join(parts)

    def seen(self, key: StorageKey, update_id: int) -> str:
        """The mark that an update of this conversation was handled (dedup), in its slot."""
        return self.build(key, f"seen:{update_id}")


def _dumps(data: Any) -> str:
    """Compact JSON, non-ASCII kept as UTF-8 (a Chinese name is 3 bytes a character, not 6)."""
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def _seconds(ttl: Any) -> str:
    if ttl is None:
        return ""
    if isinstance(ttl, timedelta):
        return str(int(ttl.total_seconds()))
    return str(int(ttl))


def _hash_tag(key: str) -> str:
    """What Redis Cluster hashes a key by: the part in its first braces, else the whole key."""
    start = key.find("{")
    end = key.find("}", start + 1)
    return key[start + 1:end] if start != -1 and end > start + 1 else key


def _text(value: Any) -> Any:
    return value.decode() if isinstance(value, bytes) else value


class BatchedRedisStorage(RedisStorage):
    """aiogram's RedisStorage whose writes, while a unit is being flushed, are queued for the
    one script that stores them all instead of each being sent on its own."""

    async def set_state(self, key: StorageKey, state: str | State | None = None) -> None:
        batch = _batch.get()
        if batch is None:
            await super().set_state(key, state)
            return
        redis_key = self.key_builder.build(key, "state")
        if state is None:
            batch.append(("del", redis_key, "", ""))
        else:
            batch.append(("set", redis_key, state.state if isinstance(state, State) else state,
                          _seconds(self.state_ttl)))

    async def set_data(self, key: StorageKey, data: Mapping[str, Any]) -> None:
        batch = _batch.get()
        if batch is None:
            await super().set_data(key, data)
            return
        if not isinstance(data, dict):
            raise DataNotDictLikeError(f"Data must be a dict or dict-like object, got {type(data).__name__}")
        batch.append(self.data_write(key, self.json_dumps(data) if data else None))

    def data_write(self, key: StorageKey, text: str | None) -> tuple[str, str, str, str]:
        """The queued write of a conversation's data given as JSON text (None: empty, deleted)."""
        redis_key = self.key_builder.build(key, "data")
        return ("set", redis_key, text, _seconds(self.data_ttl)) if text else ("del", redis_key, "", "")

    async def close(self) -> None:
        await self.redis.aclose()  # RedisCluster's aclose() takes no close_connection_pool


_renewals: set[asyncio.Task[None]] = set()  # running renewals, kept until done


class LockKeeper:
    """Renews a held lock every third of its TTL while its holder runs, so a handler may take as
    long as it needs while a lock whose process died expires within one TTL. A timer per lock,
    and a Redis call only for the rare handler that outlives a third of the TTL."""

    def __init__(self, renew: Any, key: str, token: str, ttl_ms: int) -> None:
        self._renew = renew
        self._key = key
        self._token = token
        self._ttl_ms = ttl_ms
        self._interval = ttl_ms / 3000
        self._loop = asyncio.get_running_loop()
        self._stopped = False
        self._timer = self._loop.call_later(self._interval, self._due)

    def _due(self) -> None:
        renewal = self._loop.create_task(self._extend())
        _renewals.add(renewal)
        renewal.add_done_callback(_renewals.discard)

    async def _extend(self) -> None:
        try:
            held = int(await self._renew(keys=[self._key], args=[self._token, self._ttl_ms]))
        except Exception as exc:  # Redis away for a moment: the next try may still be in time
            log.warning("fsm.lock_renew_failed key=%s error=%s", self._key, type(exc).__name__)
            held = 1
        if self._stopped:
            return
        if not held:  # it ran out (Redis unreachable for a whole TTL): another update may hold it now
            log.warning("fsm.lock_lost key=%s", self._key)
            return
        self._timer = self._loop.call_later(self._interval, self._due)

    def stop(self) -> None:
        self._stopped = True
        self._timer.cancel()


class UnitOfWorkStorage(BaseStorage):
    def __init__(self, inner: BaseStorage) -> None:
        self.inner = inner
        redis = getattr(inner, "redis", None)
        self._flush_script = redis.register_script(_FLUSH) if redis is not None else None

    # --- units -------------------------------------------------------------------------------

    @asynccontextmanager
    async def unit_of_work(self) -> AsyncIterator[None]:
        outer = _current_unit.get()
        if outer is not None:  # join it; roll back what this block wrote if it raises
            saved = {key: replace(record) for key, record in outer.records.items()}
            try:
                yield
            except BaseException:
                outer.records = saved
                raise
            return
        unit = _Unit()
        token = _current_unit.set(unit)
        try:
            yield
            await self.flush(unit)
        finally:
            _current_unit.reset(token)

    @asynccontextmanager
    async def read_only_unit(self, prefetched: Mapping[StorageKey, tuple[str | None, str | None]] | None = None
                             ) -> AsyncIterator[None]:
        """A unit whose writes are dropped: for an update handled outside the user's lock, which
        may read the conversation but must not write it."""
        unit, token = self.begin(prefetched or {})
        try:
            yield
        finally:
            self.end(token)
            if any(r.dirty_state or r.dirty_data for r in unit.records.values()):
                log.warning("fsm.write_dropped: an update handled outside the user's lock changed the conversation")

    def begin(self, prefetched: Mapping[StorageKey, tuple[str | None, str | None]]) -> tuple[_Unit, Any]:
        """Open a unit that already knows the state and data (JSON text) of some keys."""
        unit = _Unit({key: _Record(state=state, data=data or None) for key, (state, data) in prefetched.items()})
        return unit, _current_unit.set(unit)

    def end(self, token: Any) -> None:
        _current_unit.reset(token)

    def in_unit(self) -> bool:
        return _current_unit.get() is not None

    async def writes(self, unit: _Unit) -> list[tuple[str, str, str, str]]:
        """What the unit changed, as (op, key, value, ttl): states through the inner storage's
        own set_state, which queues instead of sending while this runs; data as the JSON text
        the unit holds (BatchedRedisStorage.data_write: its key and TTL, no re-encoding)."""
        assert isinstance(self.inner, BatchedRedisStorage)
        batch: list[tuple[str, str, str, str]] = []
        token = _batch.set(batch)
        try:
            for key, record in unit.records.items():
                if record.dirty_state:
                    await self.inner.set_state(key, record.state)
                if record.dirty_data:  # kept as the JSON text it is stored as
                    batch.append(self.inner.data_write(key, record.data))
        finally:
            _batch.reset(token)
        return batch

    async def flush(self, unit: _Unit, *, lock: tuple[str, str] | None = None,
                    seen: tuple[str, int] | None = None) -> None:
        """Store the unit's writes, mark an update handled and release a lock: one round trip
        (one more for each other conversation the unit wrote)."""
        if not any(r.dirty_state or r.dirty_data for r in unit.records.values()) and not lock and not seen:
            return
        if self._flush_script is None or not isinstance(self.inner, BatchedRedisStorage):
            for key, record in unit.records.items():  # another storage: write one by one
                if record.dirty_state:
                    await self.inner.set_state(key, record.state)
                if record.dirty_data:
                    await self.inner.set_data(key, json.loads(record.data) if record.data else {})
            return
        batch = await self.writes(unit)
        lock_key, lock_token = lock or ("", "")
        seen_key, seen_ttl = seen or ("", 0)
        # One script per conversation, since on Redis Cluster a script keeps to one hash slot.
        # A unit seldom writes another conversation than its own; those go first, so the update
        # is marked handled (and unlocked) only once everything it wrote is stored.
        own = _hash_tag(lock_key or seen_key) if lock_key or seen_key else None
        groups: dict[str, list[tuple[str, str, str, str]]] = {}
        for write in batch:
            groups.setdefault(_hash_tag(write[1]), []).append(write)
        own_writes = groups.pop(own, []) if own is not None else []
        for writes in groups.values():
            await self._run_flush(writes)
        if own is not None:
            await self._run_flush(own_writes, lock_key, lock_token, seen_key, seen_ttl)

    async def _run_flush(self, writes: list[tuple[str, str, str, str]], lock_key: str = "", lock_token: str = "",
                         seen_key: str = "", seen_ttl: int = 0) -> None:
        anchor = lock_key or seen_key or writes[0][1]  # fills an unused slot, in the same hash slot
        keys = [lock_key or anchor, seen_key or anchor]
        args: list[str] = [lock_token, str(seen_ttl) if seen_key else ""]
        for op, redis_key, value, ttl in writes:
            keys.append(redis_key)
            args += [op, value, ttl]
        await self._flush_script(keys=keys, args=args)

    # --- BaseStorage ---------------------------------------------------------------------------

    def _record(self, key: StorageKey) -> _Record | None:
        unit = _current_unit.get()
        if unit is None:
            return None
        record = unit.records.get(key)
        if record is None:
            record = unit.records[key] = _Record()
        return record

    async def set_state(self, key: StorageKey, state: str | State | None = None) -> None:
        record = self._record(key)
        if record is None:
            await self.inner.set_state(key, state)
            return
        record.state = state.state if isinstance(state, State) else state
        record.dirty_state = True

    async def get_state(self, key: StorageKey) -> str | None:
        record = self._record(key)
        if record is None:
            return await self.inner.get_state(key)
        if record.state is _MISSING:
            record.state = await self.inner.get_state(key)
        return record.state

    async def set_data(self, key: StorageKey, data: Mapping[str, Any]) -> None:
        record = self._record(key)
        if record is None:
            await self.inner.set_data(key, data)
            return
        # Kept as JSON text: a copy, as RedisStorage gives — a change the handler makes in
        # place afterwards, without set_data, must not leak into the buffer.
        data = dict(data)
        record.data = _dumps(data) if data else None
        record.dirty_data = True

    async def get_data(self, key: StorageKey) -> dict[str, Any]:
        text = await self.get_data_text(key)
        return json.loads(text) if text else {}

    async def get_data_text(self, key: StorageKey) -> str | None:
        """The data as the JSON text it is stored as (None: empty): no decoding for a caller
        that compares or stores text (bot.middlewares.SessionAndLanguage)."""
        record = self._record(key)
        if record is None or record.data is _MISSING:
            data = await self.inner.get_data(key)
            text = _dumps(data) if data else None
            if record is not None:
                record.data = text
            return text
        return record.data

    async def set_data_text(self, key: StorageKey, text: str | None) -> None:
        """Store data given as compact JSON text of a dict (None: empty), as set_data would."""
        record = self._record(key)
        if record is None:
            await self.inner.set_data(key, json.loads(text) if text else {})
            return
        record.data = text
        record.dirty_data = True

    async def close(self) -> None:
        await self.inner.close()


class SessionIsolation(RedisEventIsolation):
    """The per-user lock, at one round trip in and one out.

    `session(key, seen=...)` takes the lock, skips an update already handled (its `seen` key
    exists), reads the state and data, and opens a unit of work with them; on the way out it
    stores the unit's writes, marks the update handled and releases the lock in one script.
    When the block raises, nothing is written or marked, and the lock is released. The lock
    lives LOCK_TTL_MS and is renewed while the block runs (LockKeeper).
    `lock(key)` is the same without the update (aiogram's BaseEventIsolation interface)."""

    def __init__(self, redis: Redis, storage: UnitOfWorkStorage, key_builder: TaggedKeyBuilder,
                 lock_ttl_ms: int = LOCK_TTL_MS) -> None:
        if not isinstance(storage.inner, BatchedRedisStorage):
            raise TypeError("SessionIsolation needs a UnitOfWorkStorage over a BatchedRedisStorage")
        super().__init__(redis, key_builder=key_builder)
        self.storage = storage
        self.lock_ttl_ms = lock_ttl_ms
        self._acquire = redis.register_script(_ACQUIRE)
        self._renew = redis.register_script(_RENEW)

    @asynccontextmanager
    async def lock(self, key: StorageKey) -> AsyncIterator[None]:
        async with self.session(key):
            yield

    @asynccontextmanager
    async def session(self, key: StorageKey, seen: tuple[str, int] | None = None) -> AsyncIterator[bool]:
        """Yields False (and holds nothing) when `seen` says the update was handled already."""
        build = self.key_builder.build
        lock_key = build(key, "lock")
        token = f"{_PROCESS_TOKEN}:{next(_lock_numbers)}"
        keys = [lock_key, build(key, "state"), build(key, "data"), seen[0] if seen else lock_key]
        args = [token, self.lock_ttl_ms, "1" if seen else "0"]
        delay = LOCK_RETRY_FIRST
        while True:
            reply = await self._acquire(keys=keys, args=args)
            if int(reply[0]) != 0:
                break
            await asyncio.sleep(delay)  # another update of this user is being handled
            delay = min(delay * 2, LOCK_RETRY_MAX)
        if int(reply[0]) == 2:
            yield False
            return
        keeper = LockKeeper(self._renew, lock_key, token, self.lock_ttl_ms)
        try:
            unit, unit_token = self.storage.begin({key: (_text(reply[1]), _text(reply[2]))})
            try:
                yield True
            except BaseException:
                self.storage.end(unit_token)
                unit_token = None
                await self._unlock(lock_key, token)
                raise
            finally:
                if unit_token is not None:
                    self.storage.end(unit_token)
            try:
                await self.storage.flush(unit, lock=(lock_key, token), seen=seen)
            except BaseException:
                await self._unlock(lock_key, token)  # nothing was stored; the next update may go on
                raise
        finally:
            keeper.stop()

    @asynccontextmanager
    async def unlocked_session(self, key: StorageKey) -> AsyncIterator[None]:
        """The conversation's state and data, read in one round trip without taking the lock,
        in a unit whose writes are dropped."""
        build = self.key_builder.build
        state, data = await self.redis.mget(build(key, "state"), build(key, "data"))
        async with self.storage.read_only_unit({key: (_text(state), _text(data))}):
            yield

    async def _unlock(self, lock_key: str, token: str) -> None:
        try:
            await self.storage.flush(_Unit(), lock=(lock_key, token))
        except Exception as exc:  # Redis is what failed: the lock expires on its own; the first error matters
            log.warning("fsm.unlock_failed key=%s error=%s", lock_key, type(exc).__name__)

    async def close(self) -> None:
        pass


def build_storage(redis: Redis, ttl_seconds: int) -> tuple[UnitOfWorkStorage, SessionIsolation]:
    """Keys carry the bot id, so several bots can share one Redis."""
    inner = BatchedRedisStorage(
        redis,
        key_builder=TaggedKeyBuilder(),
        state_ttl=ttl_seconds,
        data_ttl=ttl_seconds,
        json_dumps=_dumps,
    )
    storage = UnitOfWorkStorage(inner)
    return storage, SessionIsolation(redis, storage, inner.key_builder)
