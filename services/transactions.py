"""Optimistic Redis transactions: read the keys, decide, then write only if they are unchanged.

Every order transition goes through here, so each one checks the current state and
applies atomically; a concurrent change makes it re-read and decide again.

Two round trips (docs/performance.md): an MGET of the keys, then one script that compares
each key with what was read and, when none changed, applies the writes. It is
WATCH/MULTI/EXEC without the WATCH and UNWATCH round trips. A decision without writes costs
the read alone. Every key the script touches is in its KEYS, so on Redis Cluster it runs on
one slot as long as the caller's keys share one (the ledger's `{esign}` tag does).

A decision's writes are recorded on a `Writes`, whose methods read like the client's
(`pipe.set(key, value, ex=...)`, `pipe.zadd(key, {member: score})`), and sent in the script.
"""
from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from redis.asyncio import Redis
from redis.exceptions import NoScriptError

from services.redis_text import text_or_none

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)

# What a write may carry; the client encodes it for the script (text as UTF-8, numbers as text).
Value = str | bytes | int | float


class Writes:
    """The writes of one decision, recorded to be applied by the commit script.

    Each command names one key, so that every key the script writes is in its KEYS (Redis
    Cluster refuses a script that touches keys it was not given). Only the commands the
    services write in a transaction are here. Arguments are checked now: a command Redis
    would refuse inside the script would stop it after the writes before it were applied.
    Like a redis-py pipeline's, each method returns the recorder itself.
    """

    def __init__(self) -> None:
        self.commands: list[tuple[str, str, tuple[Value, ...]]] = []

    def _add(self, command: str, key: str, *args: Value) -> Writes:
        self.commands.append((command, key, args))
        return self

    def set(self, key: str, value: Value, *, ex: int | None = None) -> Writes:
        """SET, with an expiry in seconds when `ex` is given."""
        if ex is None:
            return self._add("SET", key, value)
        if ex <= 0:
            raise ValueError(f"an expiry must be positive, not {ex}")
        return self._add("SET", key, value, "EX", ex)

    def delete(self, key: str) -> Writes:
        return self._add("DEL", key)

    def zadd(self, key: str, mapping: Mapping[str, float]) -> Writes:
        """Add or re-score the members, `{member: score}`."""
        if not mapping:
            raise ValueError("zadd needs at least one member")
        return self._add("ZADD", key, *[arg for member, score in mapping.items() for arg in (score, member)])

    def zrem(self, key: str, *members: str) -> Writes:
        if not members:
            raise ValueError("zrem needs at least one member")
        return self._add("ZREM", key, *members)

    def zremrangebyrank(self, key: str, start: int, stop: int) -> Writes:
        return self._add("ZREMRANGEBYRANK", key, start, stop)

    def rpush(self, key: str, *values: Value) -> Writes:
        if not values:
            raise ValueError("rpush needs at least one value")
        return self._add("RPUSH", key, *values)

    def sadd(self, key: str, *members: Value) -> Writes:
        if not members:
            raise ValueError("sadd needs at least one member")
        return self._add("SADD", key, *members)


Write = Callable[[Writes], object]  # records a decision's writes (what it returns is ignored)


@dataclass(frozen=True)
class Decision(Generic[T_co]):
    """What a transaction decided: the result to return, and the writes to apply (or none)."""

    result: T_co
    writes: Write | None = None


class TransactionConflict(RuntimeError):
    """The keys kept changing under us; the caller may retry later."""


# KEYS: the n keys read, then the key of each write. ARGV: n, per key read '1' and its value
# when it was read ('0' and '' when it did not exist), then per write: its argument count, the
# command and its arguments after the key. Returns 0, writing nothing, when a key read has
# changed since.
_COMMIT = """
local n = tonumber(ARGV[1])
if n > 0 then
  local now = redis.call('MGET', unpack(KEYS, 1, n))
  for i = 1, n do
    local existed, was = ARGV[2 * i], ARGV[2 * i + 1]
    if now[i] then
      if existed ~= '1' or now[i] ~= was then return 0 end
    elseif existed ~= '0' then return 0 end
  end
end
local a, k = 2 * n + 2, n + 1
while a <= #ARGV do
  local count = tonumber(ARGV[a])
  local command = {ARGV[a + 1], KEYS[k]}
  for j = 1, count do command[j + 2] = ARGV[a + 1 + j] end
  redis.call(unpack(command))
  a, k = a + 2 + count, k + 1
end
return 1
"""
_COMMIT_SHA = hashlib.sha1(_COMMIT.encode()).hexdigest()


async def _commit(redis: Redis, keys: Sequence[str], read: Sequence[str | None], writes: Writes) -> bool:
    write_keys: list[str] = []
    args: list[Value] = [len(keys)]
    for value in read:
        args += ["0", ""] if value is None else ["1", value]
    for command, key, rest in writes.commands:
        write_keys.append(key)
        args += [len(rest), command, *rest]
    all_keys = [*keys, *write_keys]
    try:
        done = await redis.evalsha(_COMMIT_SHA, len(all_keys), *all_keys, *args)
    except NoScriptError:
        await redis.script_load(_COMMIT)
        done = await redis.evalsha(_COMMIT_SHA, len(all_keys), *all_keys, *args)
    return int(done) == 1


async def transact(
    redis: Redis,
    keys: Sequence[str],
    decide: Callable[[list[str | None]], Decision[T]],
    attempts: int = 20,
    *,
    known: list[str | None] | None = None,
) -> T:
    """`known`: the keys' values as the caller read them already; the first attempt decides on
    them without reading again (should they have changed, the write is refused and the next
    attempt reads afresh)."""
    for attempt in range(attempts):
        values = known if attempt == 0 and known is not None else [text_or_none(v) for v in await redis.mget(keys)]
        decision = decide(values)
        if decision.writes is None:
            return decision.result
        writes = Writes()
        decision.writes(writes)
        if await _commit(redis, keys, values, writes):
            return decision.result
    raise TransactionConflict(f"keys kept changing: {', '.join(keys)}")
