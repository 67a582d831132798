"""Optimistic Redis transactions: WATCH the keys, read them, decide, write in MULTI/EXEC.

Every order transition goes through here, so each one checks the current state and
applies atomically; a concurrent change makes it re-read and decide again.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import WatchError

T = TypeVar("T")

Writes = Callable[[Pipeline], None]


class Decision(Generic[T]):
    """What a transaction decided: the result to return, and the writes to queue (or none)."""

    def __init__(self, result: T, writes: Writes | None = None) -> None:
        self.result = result
        self.writes = writes


class TransactionConflict(RuntimeError):
    """The keys kept changing under us; the caller may retry later."""


async def transact(
    redis: Redis,
    keys: Sequence[str],
    decide: Callable[[list[str | None]], Decision[T]],
    attempts: int = 20,
) -> T:
    for _ in range(attempts):
        async with redis.pipeline(transaction=True) as pipe:
            try:
                await pipe.watch(*keys)
                # MGET by name: redis-py's cluster pipeline blocks its mget() helper, though the
                # keys of one transaction share a hash slot (services/keys.py).
                values = await pipe.execute_command("MGET", *keys)
                decision = decide(values)
                if decision.writes is None:
                    await pipe.unwatch()
                    return decision.result
                pipe.multi()
                decision.writes(pipe)
                await pipe.execute()
                return decision.result
            except WatchError:
                continue
    raise TransactionConflict(f"keys kept changing: {', '.join(keys)}")
