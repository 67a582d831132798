"""Before and after, on the same machine at the same time: `python -m esign_devkit.bench.ablation`.

Runs `python -m bot bench` once per variant, each in a process of its own, from the wiring
the bot had before issue 7 ("stock") to today's, one change at a time:

    stock        aiogram's RedisStorage + RedisEventIsolation + FSM middleware, the unit of
                 work flushing state and data one command each, the dedup mark its own SET NX,
                 SMS-code check and a phone's enterprises two round trips each, synchronous
                 filters in worker threads (aiogram's default), Bot API reply models rebuilt
                 whenever the garbage collector dropped them
    +filters     synchronous filters called in the event loop (bot.middlewares.speed_up_dispatch, 1)
    +models      the Bot API reply models kept (bot.middlewares.KEPT_RESPONSE_MODELS)
    +scripts     the SMS code checked and used in one script, a phone's enterprises in one
    +lock        the lock, the dedup check and the state read in one round trip, the writes,
                 the dedup mark and the unlock in one (bot.state.storage.SessionIsolation)
    today        + handlers that cannot match skipped before their filters run, the routers
                 walked in one loop (speed_up_dispatch, 2 and 3)

The domain's round trips (checked writes, the order-create script, an order read once an
update), the cached keyboards and phone numbers are in every variant.

Every variant runs the same alternating rounds against the same bare-aiogram baseline; the
table shows each one's updates/s, ratio, CPU per update and round trips per update.
"""
from __future__ import annotations

import argparse
import asyncio
import copy
import gc
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

VARIANTS = ("stock", "+filters", "+models", "+scripts", "+lock", "today")
ROOT = Path(__file__).resolve().parent.parent


# --- the unit of work as it was (state and data flushed one command each, deep copies) -------------

_MISSING: Any = object()


@dataclass
class _Record:
    state: Any = _MISSING
    data: Any = _MISSING
    dirty_state: bool = False
    dirty_data: bool = False


@dataclass
class _Unit:
    records: dict[Any, _Record] = field(default_factory=dict)


_unit: ContextVar[_Unit | None] = ContextVar("stock_unit_of_work", default=None)


def _stock_storage_class() -> type:
    from aiogram.fsm.state import State
    from aiogram.fsm.storage.base import BaseStorage

    class StockUnitOfWorkStorage(BaseStorage):
        def __init__(self, inner: BaseStorage) -> None:
            self.inner = inner

        @asynccontextmanager
        async def unit_of_work(self) -> AsyncIterator[None]:
            unit = _Unit()
            token = _unit.set(unit)
            try:
                yield
                for key, record in unit.records.items():
                    if record.dirty_state:
                        await self.inner.set_state(key, record.state)
                    if record.dirty_data:
                        await self.inner.set_data(key, record.data)
            finally:
                _unit.reset(token)

        def _record(self, key: Any) -> _Record | None:
            unit = _unit.get()
            return None if unit is None else unit.records.setdefault(key, _Record())

        async def set_state(self, key: Any, state: Any = None) -> None:
            record = self._record(key)
            if record is None:
                await self.inner.set_state(key, state)
                return
            record.state = state.state if isinstance(state, State) else state
            record.dirty_state = True

        async def get_state(self, key: Any) -> str | None:
            record = self._record(key)
            if record is None:
                return await self.inner.get_state(key)
            if record.state is _MISSING:
                record.state = await self.inner.get_state(key)
            return record.state

        async def set_data(self, key: Any, data: Mapping[str, Any]) -> None:
            record = self._record(key)
            if record is None:
                await self.inner.set_data(key, data)
                return
            record.data = copy.deepcopy(dict(data))
            record.dirty_data = True

        async def get_data(self, key: Any) -> dict[str, Any]:
            record = self._record(key)
            if record is None:
                return await self.inner.get_data(key)
            if record.data is _MISSING:
                record.data = await self.inner.get_data(key)
            return copy.deepcopy(record.data)

        # What bot.middlewares asks of today's storage, over this one's dicts.
        def in_unit(self) -> bool:
            return _unit.get() is not None

        async def get_data_text(self, key: Any) -> str | None:
            data = await self.get_data(key)
            return json.dumps(data, ensure_ascii=False, separators=(",", ":")) if data else None

        async def set_data_text(self, key: Any, text: str | None) -> None:
            await self.set_data(key, json.loads(text) if text else {})

        async def close(self) -> None:
            await self.inner.close()

    return StockUnitOfWorkStorage


# The SMS-code check as it was: one script takes a try and returns the stored HMAC, a second
# one uses the code up.
_STOCK_TRY = """
local v = redis.call('HMGET', KEYS[1], 'digest', 'expires_at', 'tries')
if not v[1] then return {'no_code', 0, ''} end
if tonumber(v[2]) <= tonumber(ARGV[1]) then return {'expired', 0, ''} end
local max = tonumber(ARGV[2])
if tonumber(v[3]) >= max then return {'too_many', 0, ''} end
if ARGV[4] == '0' then return {'peek', max - tonumber(v[3]), ''} end
local tries = redis.call('HINCRBY', KEYS[1], 'tries', 1)
return {'check', max - tries, v[1]}
"""


def _patch_stock_scripts() -> None:
    import hmac

    from services import codes, enterprises, keys
    from services.codes import CODE_DIGITS, VerifyResult
    from services.phones import normalize_phone

    async def verify(self: Any, user_id: int, phone: str, code: str, remember_chat: Any = None) -> Any:
        result = await check(self, user_id, phone, code)
        if result.ok and remember_chat is not None:  # the phone's chats were a command of their own
            await self.redis.hset(keys.phone_chats(normalize_phone(phone)), str(remember_chat[0]), remember_chat[1])
        return result

    async def check(self: Any, user_id: int, phone: str, code: str) -> Any:
        script = getattr(self, "_stock_try", None) or self.redis.register_script(_STOCK_TRY)
        self._stock_try = script
        phone = normalize_phone(phone)
        entered = "".join(code.split())
        args = [repr(self.clock.now().timestamp()), self.policy.max_attempts, str(user_id)]
        if not (len(entered) == CODE_DIGITS and entered.isdecimal()):
            _, left, _ = await script(keys=[keys.code(phone, user_id)], args=[*args, "0"])
            return VerifyResult(status="malformed", attempts_left=int(left))
        entered = f"{int(entered):0{CODE_DIGITS}d}"
        status, left, stored = await script(keys=[keys.code(phone, user_id)], args=[*args, "1"])
        left = int(left)
        if status != "check":
            return VerifyResult(status=status)
        if hmac.compare_digest(stored, self._digest(phone, entered)):
            if await self._consume(keys=[keys.code(phone, user_id)], args=[stored]):
                return VerifyResult(status="ok")
            return VerifyResult(status="no_code")
        return VerifyResult(status="wrong" if left > 0 else "too_many", attempts_left=left)

    async def for_phone(self: Any, phone: str) -> Any:
        return await self._load_set(keys.phone_enterprises(phone))

    codes.PhoneCodeService.verify = verify
    enterprises.RedisEnterpriseDirectory.for_phone = for_phone


def apply(variant: str) -> None:
    """Wind the wiring back to `variant` (in this process, before any dispatcher is built)."""
    import bot.app
    import bot.middlewares as mw

    level = VARIANTS.index(variant)
    if level < VARIANTS.index("+models"):
        mw.KEPT_RESPONSE_MODELS = ()
        gc.collect()
    if level < VARIANTS.index("+scripts"):
        _patch_stock_scripts()
    if level < VARIANTS.index("+lock"):
        from aiogram.fsm.middleware import FSMContextMiddleware
        from aiogram.fsm.storage.base import DefaultKeyBuilder
        from aiogram.fsm.storage.redis import RedisEventIsolation, RedisStorage

        def build_storage(redis: Any, ttl_seconds: int) -> tuple[Any, Any]:
            inner = RedisStorage(redis, key_builder=DefaultKeyBuilder(with_bot_id=True),
                                 state_ttl=ttl_seconds, data_ttl=ttl_seconds)
            return _stock_storage_class()(inner), RedisEventIsolation(redis, key_builder=inner.key_builder)

        def install(dp: Any, dedup_seconds: int) -> None:
            dp.fsm = FSMContextMiddleware(dp.fsm.storage, dp.fsm.events_isolation, dp.fsm.strategy)
            dp.update.outer_middleware(dp.fsm)

        bot.app.build_storage = build_storage
        bot.app.install_session_lock = install
    if level < VARIANTS.index("+filters"):
        bot.app.speed_up_dispatch = lambda dp: None
    elif level < VARIANTS.index("today"):
        bot.app.speed_up_dispatch = lambda dp: mw.speed_up_dispatch(dp, skip_early=False, pass_over=False)


def run_variant(variant: str, users: int, rounds: int, redis_url: str) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-m", "esign_devkit.bench.ablation", "--variant", variant, "-n", str(users),
         "--rounds", str(rounds), "--redis", redis_url],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800,
    )
    if proc.returncode not in (0, 1):
        raise RuntimeError(f"variant {variant} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout)


def main(argv: list[str]) -> int:
    from esign_devkit.bench.run import DEFAULT_REDIS_URL

    parser = argparse.ArgumentParser(prog="python -m esign_devkit.bench.ablation", description=__doc__.split("\n\n")[0])
    parser.add_argument("--variant", choices=VARIANTS, help="run one variant in this process (JSON out)")
    parser.add_argument("--only", help="comma-separated variants to compare (default: all)")
    parser.add_argument("-n", "--users", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--redis", default=os.environ.get("BENCH_REDIS_URL", DEFAULT_REDIS_URL))
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if args.variant:
        apply(args.variant)
        from esign_devkit.bench.run import bench

        result = asyncio.run(bench(args.users, args.redis, args.rounds))
        result["variant"] = args.variant
        print(json.dumps(result, ensure_ascii=False))
        return 0 if result["purchases_completed"] == result["purchases"] else 1
    variants = [v.strip() for v in args.only.split(",")] if args.only else list(VARIANTS)
    rows = []
    for variant in variants:
        print(f"... {variant}", file=sys.stderr, flush=True)
        rows.append(run_variant(variant, args.users, args.rounds, args.redis))
    if args.json:
        print(json.dumps(rows, ensure_ascii=False))
        return 0
    head = (f"{'variant':10} {'upd/s':>8} {'aiogram':>8} {'ratio':>6} {'CPU ms':>7} {'aiogram':>8} {'RT/upd':>7}"
            f" {'p50 ms':>8} {'p99 ms':>8} {'done':>9}")
    print(head)
    for r in rows:
        print(f"{r['variant']:10} {r['updates_per_s']:>8} {r['baseline_updates_per_s']:>8} {r['ratio_vs_aiogram']:>6} "
              f"{r['cpu_ms_per_update']:>7} {r['baseline_cpu_ms_per_update']:>8} {r['redis_roundtrips_per_update']:>7} "
              f"{round(r['p50_ms']):>8} {round(r['p99_ms']):>8} {r['purchases_completed']:>4}/{r['purchases']:<4}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
