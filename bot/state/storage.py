"""FSM storage: aiogram's RedisStorage, written once per update and only when it succeeds.

Inside a unit of work (one update), reads are cached and writes buffered; the buffer is
flushed when the handler returns and dropped when it raises, so a failed update leaves the
conversation exactly as it was.
"""
from __future__ import annotations

import copy
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from aiogram.fsm.state import State
from aiogram.fsm.storage.base import BaseStorage, DefaultKeyBuilder, StorageKey
from aiogram.fsm.storage.redis import RedisEventIsolation, RedisStorage
from redis.asyncio import Redis

_MISSING: Any = object()


@dataclass
class _Record:
    state: Any = _MISSING
    data: Any = _MISSING
    dirty_state: bool = False
    dirty_data: bool = False


@dataclass
class _Unit:
    records: dict[StorageKey, _Record] = field(default_factory=dict)


_current_unit: ContextVar[_Unit | None] = ContextVar("fsm_unit_of_work", default=None)


class UnitOfWorkStorage(BaseStorage):
    def __init__(self, inner: BaseStorage) -> None:
        self.inner = inner

    @asynccontextmanager
    async def unit_of_work(self) -> AsyncIterator[None]:
        unit = _Unit()
        token = _current_unit.set(unit)
        try:
            yield
            await self._flush(unit)
        finally:
            _current_unit.reset(token)

    async def _flush(self, unit: _Unit) -> None:
        for key, record in unit.records.items():
            if record.dirty_state:
                await self.inner.set_state(key, record.state)
            if record.dirty_data:
                await self.inner.set_data(key, record.data)

    def _record(self, key: StorageKey) -> _Record | None:
        unit = _current_unit.get()
        if unit is None:
            return None
        return unit.records.setdefault(key, _Record())

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
        # Deep copies in and out, as RedisStorage (JSON) gives: a change the handler makes in
        # place, without set_data, must not leak into the buffer.
        record.data = copy.deepcopy(dict(data))
        record.dirty_data = True

    async def get_data(self, key: StorageKey) -> dict[str, Any]:
        record = self._record(key)
        if record is None:
            return await self.inner.get_data(key)
        if record.data is _MISSING:
            record.data = await self.inner.get_data(key)
        return copy.deepcopy(record.data)

    async def close(self) -> None:
        await self.inner.close()


def build_storage(redis: Redis, ttl_seconds: int) -> tuple[UnitOfWorkStorage, RedisEventIsolation]:
    """Keys carry the bot id, so several bots can share one Redis."""
    inner = RedisStorage(
        redis,
        key_builder=DefaultKeyBuilder(with_bot_id=True),
        state_ttl=ttl_seconds,
        data_ttl=ttl_seconds,
    )
    return UnitOfWorkStorage(inner), RedisEventIsolation(redis, key_builder=inner.key_builder)
