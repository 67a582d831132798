"""Conversations in Redis, and the one way to open one and change it: for an update, for the
help desk moving a customer's conversation, for a web payment telling the chat.

A conversation is its step (the FSM state) and its data (the session, JSON text), kept under
`fsm:{<bot>:<chat>:<user>}:state|data`, with its lock and the marks of the updates it handled
in the same hash tag (on Redis Cluster each script below touches one slot).

`ConversationStore.open(key, update_id=...)`:
- in, one round trip: take the user's lock, skip an update handled already (its mark is
  there), read the state and the data. The lock lives LOCK_TTL_MS and is renewed while the
  conversation is open, so a process that dies frees the user within that time;
- out, one round trip, when the block ends normally: store what changed, mark the update
  handled, release the lock. When the block raises, nothing is stored or marked and the lock
  is released: a failed update leaves the conversation as it was, and is handled again when
  Telegram delivers it again.
`open(key, read_only=True)` reads the state and data without the lock (a pre-checkout, which
must be answered whatever holds the user); what it changes is dropped.

`ConversationStorage` is aiogram's BaseStorage over the store: an FSMContext reads and writes
the conversation open in the current task (or Redis directly, outside one).
"""
from __future__ import annotations

import asyncio
import itertools
import json
import logging
import secrets
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from aiogram.fsm.state import State
from aiogram.fsm.storage.base import DEFAULT_DESTINY, BaseStorage, DefaultKeyBuilder, StorageKey
from redis.asyncio import Redis

from bot.runtime.metrics import LOCK_WAIT

log = logging.getLogger(__name__)

# A live holder renews its lock (LockKeeper); one whose process died frees the user when this
# runs out, well before a redelivered payment or a pre-checkout (answered within 10 s) needs it.
LOCK_TTL_MS = 8_000
LOCK_RETRY_FIRST, LOCK_RETRY_MAX = 0.002, 0.05  # seconds between tries while another update holds it
# A lock's token only has to differ from every other holder's: a random id of this process and
# a counter (a fresh random token each time would cost a system call).
_PROCESS_TOKEN = secrets.token_hex(8)
_lock_numbers = itertools.count()

# KEYS: lock, state, data, seen. ARGV: token, lock ttl in ms, '1' to check seen.
# {2}: the update was handled already; {0}: another holds the lock; else {1, state, data}.
_OPEN = """
if ARGV[3] == '1' and redis.call('EXISTS', KEYS[4]) == 1 then return {2} end
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return {0} end
return {1, redis.call('GET', KEYS[2]), redis.call('GET', KEYS[3])}
"""

# KEYS: lock, seen, state, data. ARGV: lock token ('': none to release), seen ttl ('': mark
# nothing), ttl of state and data, then for state and data each: '' unchanged, 'set' or 'del',
# and the value.
_CLOSE = """
for i = 0, 1 do
  local op, value = ARGV[4 + i * 2], ARGV[5 + i * 2]
  if op == 'set' then redis.call('SET', KEYS[3 + i], value, 'EX', ARGV[3])
  elseif op == 'del' then redis.call('DEL', KEYS[3 + i]) end
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


class TaggedKeyBuilder(DefaultKeyBuilder):
    """aiogram's DefaultKeyBuilder (bot id included) with the conversation's identity as a Redis
    Cluster hash tag: `fsm:{<bot>:<chat>:<user>}:<part>`, plus the update-handled marks."""

    def __init__(self, prefix: str = "fsm") -> None:
        super().__init__(prefix=prefix, with_bot_id=True)

    def build(self, key: StorageKey, part: str | None = None) -> str:
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


@dataclass
class Conversation:
    """An open conversation: its step and its data (JSON text, None when empty), and whether
    either changed since it was read."""

    key: StorageKey
    state: str | None
    data: str | None
    read_only: bool = False
    state_changed: bool = False
    data_changed: bool = False

    def set_state(self, state: str | None) -> None:
        if state != self.state:
            self.state, self.state_changed = state, True

    def set_data(self, text: str | None) -> None:
        if text != self.data:
            self.data, self.data_changed = text, True


# The conversations open in the current task, by key.
_open: ContextVar[dict[StorageKey, Conversation] | None] = ContextVar("open_conversations", default=None)


def _text(value: Any) -> str | None:
    return value.decode() if isinstance(value, bytes) else value


class ConversationStore:
    def __init__(self, redis: Redis, *, ttl_seconds: int, dedup_seconds: int, lock_ttl_ms: int = LOCK_TTL_MS,
                 key_builder: TaggedKeyBuilder | None = None) -> None:
        self.redis = redis
        self.ttl_seconds = ttl_seconds
        self.dedup_seconds = dedup_seconds
        self.lock_ttl_ms = lock_ttl_ms
        self.keys = key_builder or TaggedKeyBuilder()
        self._open_script = redis.register_script(_OPEN)
        self._close_script = redis.register_script(_CLOSE)
        self._renew_script = redis.register_script(_RENEW)

    @asynccontextmanager
    async def open(self, key: StorageKey, *, update_id: int | None = None,
                   read_only: bool = False) -> AsyncIterator[Conversation | None]:
        """The conversation, under its user's lock (or read only); None, holding nothing, when
        `update_id` was handled already."""
        if read_only:
            state, data = await self.redis.mget(self.keys.build(key, "state"), self.keys.build(key, "data"))
            async with self._opened(Conversation(key, _text(state), _text(data), read_only=True)) as conversation:
                yield conversation
            return
        lock_key = self.keys.build(key, "lock")
        seen = self.keys.seen(key, update_id) if update_id is not None else None
        token = f"{_PROCESS_TOKEN}:{next(_lock_numbers)}"
        reply = await self._take(key, lock_key, token, seen)
        if int(reply[0]) == 2:
            yield None
            return
        keeper = LockKeeper(self._renew_script, lock_key, token, self.lock_ttl_ms)
        try:
            conversation = Conversation(key, _text(reply[1]), _text(reply[2]))
            try:
                async with self._opened(conversation):
                    yield conversation
            except BaseException:
                await self._release(lock_key, token)
                raise
            try:
                await self._close(conversation, lock_key, token, seen)
            except BaseException:
                await self._release(lock_key, token)  # nothing was stored; the next update may go on
                raise
        finally:
            keeper.stop()

    async def _take(self, key: StorageKey, lock_key: str, token: str, seen: str | None) -> Any:
        keys = [lock_key, self.keys.build(key, "state"), self.keys.build(key, "data"), seen or lock_key]
        args: list[str | int] = [token, self.lock_ttl_ms, "1" if seen else "0"]
        delay = LOCK_RETRY_FIRST
        started: float | None = None
        while True:
            reply = await self._open_script(keys=keys, args=args)
            if int(reply[0]) != 0:
                LOCK_WAIT.observe(0.0 if started is None else time.perf_counter() - started)
                return reply
            if started is None:
                started = time.perf_counter()
            await asyncio.sleep(delay)  # another update of this user is being handled
            delay = min(delay * 2, LOCK_RETRY_MAX)

    @asynccontextmanager
    async def _opened(self, conversation: Conversation) -> AsyncIterator[Conversation]:
        opened = dict(_open.get() or {})
        opened[conversation.key] = conversation
        token = _open.set(opened)
        try:
            yield conversation
        finally:
            _open.reset(token)

    async def _close(self, conversation: Conversation, lock_key: str, token: str, seen: str | None) -> None:
        """Store what changed, mark the update handled and unlock: one round trip."""
        args: list[Any] = [token, str(self.dedup_seconds) if seen else "", self.ttl_seconds]
        for changed, value in ((conversation.state_changed, conversation.state),
                               (conversation.data_changed, conversation.data)):
            args += ["" if not changed else "set" if value else "del", value or ""]
        keys = [lock_key, seen or lock_key, self.keys.build(conversation.key, "state"),
                self.keys.build(conversation.key, "data")]
        await self._close_script(keys=keys, args=args)

    async def _release(self, lock_key: str, token: str) -> None:
        try:
            await self._close_script(keys=[lock_key] * 4, args=[token, "", self.ttl_seconds, "", "", "", ""])
        except Exception as exc:  # Redis is what failed: the lock expires on its own; the first error matters
            log.warning("conversation.unlock_failed key=%s error=%s", lock_key, type(exc).__name__)

    # --- what an FSMContext reads and writes -----------------------------------------------

    def opened(self, key: StorageKey) -> Conversation | None:
        return (_open.get() or {}).get(key)

    async def get_state(self, key: StorageKey) -> str | None:
        conversation = self.opened(key)
        if conversation is not None:
            return conversation.state
        return _text(await self.redis.get(self.keys.build(key, "state")))

    async def set_state(self, key: StorageKey, state: str | None) -> None:
        conversation = self.opened(key)
        if conversation is not None:
            self._write(conversation, "state", state)
        elif state is None:
            await self.redis.delete(self.keys.build(key, "state"))
        else:
            await self.redis.set(self.keys.build(key, "state"), state, ex=self.ttl_seconds)

    async def get_data_text(self, key: StorageKey) -> str | None:
        conversation = self.opened(key)
        if conversation is not None:
            return conversation.data
        return _text(await self.redis.get(self.keys.build(key, "data")))

    async def set_data_text(self, key: StorageKey, text: str | None) -> None:
        conversation = self.opened(key)
        if conversation is not None:
            self._write(conversation, "data", text)
        elif text is None:
            await self.redis.delete(self.keys.build(key, "data"))
        else:
            await self.redis.set(self.keys.build(key, "data"), text, ex=self.ttl_seconds)

    @staticmethod
    def _write(conversation: Conversation, part: str, value: str | None) -> None:
        if conversation.read_only:
            log.warning("conversation.write_dropped part=%s: read only, outside the user's lock", part)
        elif part == "state":
            conversation.set_state(value)
        else:
            conversation.set_data(value)


def dumps(data: Mapping[str, Any]) -> str | None:
    """Compact JSON, non-ASCII kept as UTF-8 (a Chinese name is 3 bytes a character, not 6);
    None for empty data (nothing is stored)."""
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")) if data else None


class ConversationStorage(BaseStorage):
    """aiogram's storage interface over the ConversationStore."""

    def __init__(self, store: ConversationStore) -> None:
        self.store = store

    async def set_state(self, key: StorageKey, state: str | State | None = None) -> None:
        await self.store.set_state(key, state.state if isinstance(state, State) else state)

    async def get_state(self, key: StorageKey) -> str | None:
        return await self.store.get_state(key)

    async def set_data(self, key: StorageKey, data: Mapping[str, Any]) -> None:
        await self.store.set_data_text(key, dumps(dict(data)))

    async def get_data(self, key: StorageKey) -> dict[str, Any]:
        text = await self.store.get_data_text(key)
        return json.loads(text) if text else {}

    async def close(self) -> None:
        pass


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
            log.warning("conversation.lock_renew_failed key=%s error=%s", self._key, type(exc).__name__)
            held = 1
        if self._stopped:
            return
        if not held:  # it ran out (Redis unreachable for a whole TTL): another update may hold it now
            log.warning("conversation.lock_lost key=%s", self._key)
            return
        self._timer = self._loop.call_later(self._interval, self._due)

    def stop(self) -> None:
        self._stopped = True
        self._timer.cancel()
