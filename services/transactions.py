"""Optimistic Redis transactions: read the keys, decide, then write only if they are unchanged.

Every order transition goes through here, so each one checks the current state and
applies atomically; a concurrent change makes it re-read and decide again.

Two round trips (docs/performance.md): an MGET of the keys, then one script that compares
each key with what was read and, when none changed, applies the writes. It is
WATCH/MULTI/EXEC without the WATCH and UNWATCH round trips. A decision without writes costs
the read alone. Every key the script touches is in its KEYS, so on Redis Cluster it runs on
one slot as long as the caller's keys share one (the ledger's `{esign}` tag does).
"""
from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

from redis.asyncio import Redis
from redis.commands.core import CoreCommands
from redis.exceptions import NoScriptError

T = TypeVar("T")

Writes = Callable[[Any], None]  # given a recorder with redis-py's command methods (set, zadd, ...)


class Decision(Generic[T]):
    """What a transaction decided: the result to return, and the writes to queue (or none)."""

    def __init__(self, result: T, writes: Writes | None = None) -> None:
        self.result = result
        self.writes = writes


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

# Writes the script applies: commands of one key, the key first.
_ONE_KEY_WRITES = frozenset({
    "SET", "DEL", "EXPIRE", "PEXPIRE", "INCR", "INCRBY", "RPUSH", "LPUSH", "LTRIM", "SADD", "SREM",
    "ZADD", "ZREM", "ZREMRANGEBYRANK", "ZREMRANGEBYSCORE", "HSET", "HDEL",
})


class _Recorder(CoreCommands):
    """Takes redis-py's command methods (`set(key, value, ex=...)`, `zadd(key, {...})`) and keeps
    the commands they build instead of sending them."""

    def __init__(self) -> None:
        self.commands: list[tuple[Any, ...]] = []

    def execute_command(self, *args: Any, **options: Any) -> None:
        self.commands.append(args)


async def _commit(redis: Redis, keys: Sequence[str], read: list[Any], commands: list[tuple[Any, ...]]) -> bool:
    write_keys: list[Any] = []
    args: list[Any] = [len(keys)]
    for value in read:
        args += ["0", ""] if value is None else ["1", value]
    for name, key, *rest in commands:
        write_keys.append(key)
        args += [len(rest), name, *rest]
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
        values = known if attempt == 0 and known is not None else await redis.mget(*keys)
        decision = decide(values)
        if decision.writes is None:
            return decision.result
        recorder = _Recorder()
        decision.writes(recorder)
        unknown = [c[0] for c in recorder.commands
                   if str(c[0]).upper() not in _ONE_KEY_WRITES or (str(c[0]).upper() == "DEL" and len(c) > 2)]
        if unknown:
            raise ValueError(f"transact writes one-key commands only, not {', '.join(map(str, unknown))}")
        if await _commit(redis, keys, values, recorder.commands):
            return decision.result
    raise TransactionConflict(f"keys kept changing: {', '.join(keys)}")
