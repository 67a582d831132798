"""`python -m bot bench`: what one process carries, and what each update costs in Redis.

N simulated buyers at once each complete the whole 高级版 purchase on the production
dispatcher (bot.app.build_dispatcher: the same middlewares, storage and per-user isolation as
production) on a real Redis, with the in-process fake Telegram (esign_devkit.bench.telegram), so no
network time is counted:

    /start · 购买套餐 · 立即购买 · 高级版 · 1年 · 不加购合同加量包 · 立即购买 · enterprise name ·
    shared phone · SMS code · 提交订单 · pre-checkout · payment · 立即绑定 · the enterprise · 确认绑定

In the same run, the baseline: bare aiogram 3 (RedisStorage + RedisEventIsolation) running a
trivial linear FSM flow of as many updates per user (esign_devkit.bench.baseline); `--same-traffic`
adds bare aiogram answering the purchase's kinds of update as the bot does. Rounds alternate
baseline and bot, each with fresh users; the median round of each is reported. Updates are
built as the raw JSON a webhook receives and fed with `Dispatcher.feed_raw_update`, so parsing
them is measured, as are aiogram's requests to the fake Bot API and its parsing of the replies.

Redis round trips are counted on the client (esign_devkit.bench.redis_counter); both sides use production's
client options on pools of the same size. The bench uses its own database (default 14) and
deletes, at the end, only the keys it wrote (its bot ids, users, phones, orders and
enterprises), never anything else. `--scale 10,100,1000,5000` gives the scaling curve instead.
docs/performance.md has the figures and what they mean.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import io
import json
import logging
import os
import platform
import pstats
import random
import re
import secrets
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiogram.fsm.storage.base import StorageKey

from bot.runtime import gc_tuning
from bot.state.conversations import TaggedKeyBuilder
from services import keys as redis_keys

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/14"
DEFAULT_USERS = 200
DEFAULT_ROUNDS = 3
WARMUP_USERS = 10
ENTERPRISE = "深圳基准测试科技有限公司{n}"  # each buyer buys for their own enterprise
CODE = re.compile(r"(?<!\d)\d{6}(?!\d)")
ROUND_TRIP = ("one write of one or more commands to the Redis socket and the read of their replies "
              "(a command, an EVALSHA, a pipeline or a MULTI..EXEC block each count one; WATCH and "
              "the reads between WATCH and MULTI each count one), counted client-side in "
              "redis-py's Connection.send_packed_command; connection handshakes excluded")
PURCHASE_STEPS = ("start", "catalog", "buy_now", "edition", "years", "pack", "review", "enterprise_name",
                  "phone", "code", "submit", "pre_checkout", "payment", "bind_now", "bind_pick",
                  "bind_confirm")
_KEY_PARTS = re.compile(r"[:{}]")  # a key's parts, hash tag braces dropped
MID_FLOW_STEP = PURCHASE_STEPS.index("code") + 1  # idle at the order confirmation: the fullest session
ROUND_TRIP_FLOOR = 2  # per update: the user's lock with the state read in, the writes with the unlock out


class BenchSms:
    """The SMS gateway of the bench: keeps the last code per phone, prints nothing."""

    def __init__(self) -> None:
        self.codes: dict[str, str] = {}

    async def send(self, phone: str, text: str) -> None:
        self.codes[phone] = CODE.findall(text)[-1]


class ErrorCounter(logging.Handler):
    """Counts ERROR records (the bot's error guard logs every failed update as one)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.count = 0
        self.first: str | None = None

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1
        if self.first is None:
            self.first = f"{record.name}: {record.getMessage()}"


@dataclass
class Side:
    """One measured run: a flow driven by N users at once."""

    users: int = 0
    updates: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    round_trips: int = 0
    commands: int = 0
    cpu_seconds: float = 0.0  # this process's CPU time (time.process_time), whatever else the machine runs

    @property
    def cpu_ms_per_update(self) -> float:
        return self.cpu_seconds * 1000 / self.updates if self.updates else 0.0

    @property
    def per_s(self) -> float:
        return self.updates / self.seconds if self.seconds else 0.0

    def pct(self, q: float) -> float:
        if not self.latencies:
            return 0.0
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


@dataclass
class Buyer:
    user: Any  # BenchUser
    phone: str
    enterprise_name: str
    enterprise_id: str = ""
    order_id: str | None = None
    steps_done: int = 0


class Run:
    """Everything one bench run made, so that it can delete exactly that and nothing else."""

    def __init__(self, redis_url: str, pool: int = 64) -> None:
        from esign_devkit.bench.redis_counter import RedisCounter, counted_redis

        self.redis_url = redis_url
        salt = random.randrange(10**6, 9 * 10**6)
        self.bot_id = 9_000_000_000 + salt  # ids no real bot or user has in this database
        self.baseline_bot_id = self.bot_id + 10**7
        self.mirror_bot_id = self.bot_id + 2 * 10**7
        self.next_uid = 8_000_000_000_000 + salt * 10**5
        self.phone_base = random.randrange(10**4, 9 * 10**4) * 10**4  # +86139 + 8 digits
        self.uids: set[int] = set()
        self.phones: set[str] = set()
        self.enterprise_ids: set[str] = set()
        self.order_ids: set[str] = set()
        self.counter = RedisCounter()
        self.baseline_counter = RedisCounter()
        self.redis = counted_redis(redis_url, self.counter, pool)
        self.baseline_redis = counted_redis(redis_url, self.baseline_counter, pool)
        self.errors = ErrorCounter()
        self.phone_seq = 0

    def new_uid(self) -> int:
        self.next_uid += 1
        self.uids.add(self.next_uid)
        return self.next_uid

    def new_phone(self) -> str:
        self.phone_seq += 1
        phone = f"+86139{(self.phone_base + self.phone_seq) % 10**8:08d}"
        self.phones.add(phone)
        return phone

    async def close(self) -> None:
        await self.redis.aclose()
        await self.baseline_redis.aclose()

    # --- the keys this run wrote ---------------------------------------------------------------

    def ids(self) -> set[str]:
        """Every id this run made: bot ids, users, phones, enterprises, orders."""
        return ({str(self.bot_id), str(self.baseline_bot_id), str(self.mirror_bot_id)} | {str(u) for u in self.uids}
                | self.phones | self.enterprise_ids | self.order_ids)

    async def _learn_orders(self) -> None:
        uids = sorted(self.uids)
        for i in range(0, len(uids), 1000):
            pipe = self.redis.pipeline(transaction=False)
            for uid in uids[i:i + 1000]:
                pipe.zrange(redis_keys.user_orders(uid), 0, -1)
            for found in await pipe.execute():
                self.order_ids.update(found)

    async def our_keys(self) -> tuple[list[str], list[tuple[str, str]]]:
        """(keys that are ours, shared keys (key, type) that may hold our ids as members).

        A key is ours when one of its `:`-separated parts is an id of this run (its bot ids,
        user ids, phones, enterprise and order ids: `fsm:{<bot>:<chat>:<user>}:...`,
        `{esign}:order:<id>`, `{esign}:phone:<phone>:ents`, ...), or when it is a string whose value is one (a cart's or
        a charge's order). Sets, sorted sets and hashes of other keys only lose our members."""
        await self._learn_orders()
        ids = self.ids()
        ours: list[str] = []
        others: list[str] = []
        async for key in self.redis.scan_iter(count=5000):
            if not ids.isdisjoint(_KEY_PARTS.split(key)):
                ours.append(key)
            elif key.startswith((redis_keys.NS, "fsm:")):
                others.append(key)
        shared: list[tuple[str, str]] = []
        for i in range(0, len(others), 1000):
            chunk = others[i:i + 1000]
            pipe = self.redis.pipeline(transaction=False)
            for key in chunk:
                pipe.type(key)
            types = await pipe.execute()
            strings = [k for k, t in zip(chunk, types, strict=True) if t == "string"]
            values = await self.redis.mget(strings) if strings else []
            ours += [k for k, v in zip(strings, values, strict=True) if v in ids]
            shared += [(k, t) for k, t in zip(chunk, types, strict=True) if t in ("set", "zset", "hash")]
        return ours, shared

    async def cleanup(self) -> int:
        keys, shared = await self.our_keys()
        for i in range(0, len(keys), 1000):
            await self.redis.delete(*keys[i:i + 1000])
        ids = list(self.ids())
        for key, kind in shared:
            for i in range(0, len(ids), 1000):
                chunk = ids[i:i + 1000]
                if kind == "set":
                    await self.redis.srem(key, *chunk)
                elif kind == "zset":
                    await self.redis.zrem(key, *chunk)
                else:
                    await self.redis.hdel(key, *chunk)
        self.uids.clear(), self.phones.clear(), self.enterprise_ids.clear(), self.order_ids.clear()
        return len(keys)

    async def memory_of(self, keys: list[str]) -> int:
        total = 0
        for i in range(0, len(keys), 1000):
            pipe = self.redis.pipeline(transaction=False)
            for key in keys[i:i + 1000]:
                pipe.memory_usage(key, samples=0)
            total += sum(v or 0 for v in await pipe.execute())
        return total

    async def memory_by_family(self, keys: list[str]) -> dict[str, int]:
        """MEMORY USAGE summed by key family (`{esign}:order`, `fsm:…:data`, ...)."""
        families: dict[str, int] = {}
        for i in range(0, len(keys), 1000):
            chunk = keys[i:i + 1000]
            pipe = self.redis.pipeline(transaction=False)
            for key in chunk:
                pipe.memory_usage(key, samples=0)
            for key, used in zip(chunk, await pipe.execute(), strict=True):
                parts = key.split(":")
                if parts[0] != "fsm":
                    family = ":".join(parts[:2])
                elif ":seen:" in key:
                    family = "fsm:*:seen"
                else:
                    family = f"fsm:*:{parts[-1]}"
                families[family] = families.get(family, 0) + (used or 0)
        return dict(sorted(families.items(), key=lambda kv: -kv[1]))


class Bench:
    def __init__(self, run: Run, users: int, **overrides: Any) -> None:
        from aiogram import Bot

        from bot.app import build_context, build_dispatcher
        from config.settings import Settings
        from esign_devkit.bench.baseline import baseline_dispatcher, mirror_dispatcher
        from esign_devkit.bench.telegram import BenchTelegram

        self.run = run
        self.users = users
        self.settings = Settings(_env_file=None, bot_token=None, code_secret="bench-secret",
                                 redis_url=run.redis_url, **overrides)
        self.sms = BenchSms()
        self.telegram = BenchTelegram(bot_id=run.bot_id)
        self.bot: Bot = self.telegram.make_bot()
        self.app = build_context(self.settings, run.redis, sms=self.sms)
        self.dp = build_dispatcher(self.app, self.bot)
        self.base_telegram = BenchTelegram(bot_id=run.baseline_bot_id)
        self.base_bot: Bot = self.base_telegram.make_bot()
        self.base_dp = baseline_dispatcher(run.baseline_redis, len(PURCHASE_STEPS))
        self.mirror_telegram = BenchTelegram(bot_id=run.mirror_bot_id)
        self.mirror_bot: Bot = self.mirror_telegram.make_bot()
        self.mirror_dp = mirror_dispatcher(run.baseline_redis, len(PURCHASE_STEPS))

    async def close(self) -> None:
        await self.bot.session.close()
        await self.base_bot.session.close()
        await self.mirror_bot.session.close()

    # --- buyers ------------------------------------------------------------------------------

    async def buyers(self, count: int) -> list[Buyer]:
        """Buyers with a verified enterprise each, the buyer its super admin (seeded, not timed)."""
        from esign_devkit.bench.telegram import BenchUser
        from esign_devkit.testing.fake_telegram import FakeUser
        from services.enterprises import Role

        made = []
        for _ in range(count):
            uid = self.run.new_uid()
            phone = self.run.new_phone()
            fake = FakeUser(id=uid, first_name=f"Buyer{uid % 10000}", language_code="zh-hans", phone=phone)
            made.append(Buyer(BenchUser(self.telegram, fake), phone, ENTERPRISE.format(n=uid % 10**7)))
        directory = self.app.enterprises
        gate = asyncio.Semaphore(100)

        async def seed(buyer: Buyer) -> None:
            async with gate:
                ent = await directory.add(buyer.enterprise_name, verified=True)
                self.run.enterprise_ids.add(ent.id)
                await directory.add_member(ent.id, buyer.phone, Role.MEMBER)  # bound after payment (R12)
                buyer.enterprise_id = ent.id

        await asyncio.gather(*(seed(b) for b in made))
        return made

    async def purchase(self, buyer: Buyer, record: Callable[[float], None], stop_after: int | None = None) -> None:
        """The whole 高级版 purchase, one update at a time, as the buyer's Telegram sends them."""
        from esign_devkit.bench.telegram import FlowBroken

        dp, bot, telegram, u = self.dp, self.bot, self.telegram, buyer.user
        perf = time.perf_counter

        async def feed(raw: dict[str, Any]) -> None:
            if stop_after is not None and buyer.steps_done >= stop_after:
                raise _Stop
            start = perf()
            await dp.feed_raw_update(bot, raw)
            record(perf() - start)
            buyer.steps_done += 1
            telegram.trim(u.id)

        try:
            await feed(u.text("/start"))
            await feed(u.tap("nav:catalog"))
            await feed(u.tap("nav:buy"))
            await feed(u.tap("ed:advanced"))
            await feed(u.tap("yr:1"))
            await feed(u.tap("pk:none"))
            await feed(u.tap("buy:buy_now"))
            await feed(u.text(buyer.enterprise_name))
            await feed(u.contact(buyer.phone))
            code = self.sms.codes.get(buyer.phone)
            if code is None:
                raise FlowBroken(f"no SMS code was sent to {buyer.phone}; the bot said {telegram.latest_text(u.id)!r}")
            await feed(u.text(code))
            await feed(u.tap("buy:submit"))
            invoice = telegram.latest_invoice(u.id)
            buyer.order_id = invoice["payload"]
            check = u.pre_checkout(invoice)
            await feed(check)
            answer = telegram.pre_checkout_answers.pop(check["pre_checkout_query"]["id"], None)
            if not answer or not answer.get("ok"):
                raise FlowBroken(f"pre-checkout refused: {answer}")
            await feed(u.successful_payment(invoice, f"bench-{secrets.token_hex(8)}"))
            await feed(u.tap("ord:bind:"))
            await feed(u.tap("bnd:"))
            await feed(u.tap("bok:"))
        except _Stop:
            return

    async def linear(self, user: Any, record: Callable[[float], None]) -> None:
        """The baseline's trivial flow: as many text messages as the purchase has updates."""
        dp, bot, telegram = self.base_dp, self.base_bot, self.base_telegram
        perf = time.perf_counter
        for i in range(len(PURCHASE_STEPS)):
            raw = user.text(f"answer {i}")
            start = perf()
            await dp.feed_raw_update(bot, raw)
            record(perf() - start)
            telegram.trim(user.id)

    async def mirror(self, user: Any, record: Callable[[float], None]) -> None:
        """Bare aiogram with the purchase's Telegram traffic (esign_devkit.bench.baseline.mirror_dispatcher)."""
        from esign_devkit.bench.baseline import MIRROR_PREFIX, PURCHASE_KINDS

        dp, bot, telegram = self.mirror_dp, self.mirror_bot, self.mirror_telegram
        invoice = {"currency": "CNY", "total_amount": 480_000, "payload": "mirror"}
        perf = time.perf_counter
        for i, kind in enumerate(PURCHASE_KINDS):
            if kind == "message":
                raw = user.text(f"answer {i}")
            elif kind == "tap":
                raw = user.tap(f"{MIRROR_PREFIX}:")
            else:
                raw = user.pre_checkout(invoice)
            start = perf()
            await dp.feed_raw_update(bot, raw)
            record(perf() - start)
            telegram.trim(user.id)

    def base_users(self, count: int, telegram: Any = None) -> list[Any]:
        from esign_devkit.bench.telegram import BenchUser
        from esign_devkit.testing.fake_telegram import FakeUser

        telegram = telegram or self.base_telegram
        return [BenchUser(telegram, FakeUser(id=(uid := self.run.new_uid()), first_name=f"U{uid % 10000}",
                                             language_code="zh-hans"))
                for _ in range(count)]

    # --- measuring -----------------------------------------------------------------------------

    async def measure(self, counter: Any, count: int, drive: Callable[[Callable[[float], None]], list[Awaitable[None]]],
                      profile: cProfile.Profile | None = None) -> Side:
        side = Side(users=count)
        record = side.latencies.append
        before = counter.snapshot()
        tasks = drive(record)
        if profile:
            profile.enable()
        start, cpu = time.perf_counter(), time.process_time()
        await asyncio.gather(*tasks)
        side.seconds = time.perf_counter() - start
        side.cpu_seconds = time.process_time() - cpu
        if profile:
            profile.disable()
        after = counter.snapshot()
        side.updates = len(side.latencies)
        side.round_trips, side.commands = after[0] - before[0], after[1] - before[1]
        return side

    async def bot_round(self, count: int, profile: cProfile.Profile | None = None) -> tuple[Side, list[Buyer]]:
        buyers = await self.buyers(count)
        with gc_tuning.thresholds(self.settings.gc_thresholds):  # as `python -m bot run` sets them
            side = await self.measure(self.run.counter, count,
                                      lambda record: [self.purchase(b, record) for b in buyers], profile)
        return side, buyers

    async def baseline_round(self, count: int) -> Side:
        """Bare aiogram, under the same process settings as the bot's rounds."""
        users = self.base_users(count)
        with gc_tuning.thresholds(self.settings.gc_thresholds):
            side = await self.measure(self.run.baseline_counter, count,
                                      lambda record: [self.linear(u, record) for u in users])
        for user in users:
            self.base_telegram.forget(user.id)
        return side

    async def mirror_round(self, count: int) -> Side:
        users = self.base_users(count, self.mirror_telegram)
        with gc_tuning.thresholds(self.settings.gc_thresholds):
            side = await self.measure(self.run.baseline_counter, count,
                                      lambda record: [self.mirror(u, record) for u in users])
        for user in users:
            self.mirror_telegram.forget(user.id)
        return side

    async def verify(self, buyers: list[Buyer]) -> tuple[int, list[str]]:
        """Purchases completed: the order is bound to the buyer's enterprise, which got it."""
        from services.orders import OrderStatus

        problems: list[str] = []
        done = 0
        gate = asyncio.Semaphore(100)

        async def check(buyer: Buyer) -> None:
            nonlocal done
            async with gate:
                orders = await self.app.orders.list_for_user(buyer.user.id)
                ent = await self.app.enterprises.get(buyer.enterprise_id)
            ok = (len(orders) == 1 and orders[0].status is OrderStatus.BOUND
                  and orders[0].enterprise_id == buyer.enterprise_id
                  and ent is not None and ent.delivered_orders == [orders[0].id] and ent.edition == "advanced")
            if ok:
                done += 1
            elif len(problems) < 5:
                problems.append(f"user {buyer.user.id}: orders {[(o.id, o.status.value) for o in orders]}, "
                                f"steps {buyer.steps_done}, last screen {self.telegram.latest_text(buyer.user.id)[:80]!r}")

        await asyncio.gather(*(check(b) for b in buyers))
        for buyer in buyers:
            self.telegram.forget(buyer.user.id)
        return done, problems

    async def session_bytes(self, count: int = 20) -> dict[str, float]:
        """MEMORY USAGE of idle mid-flow sessions: buyers stopped at the order confirmation
        (cart, enterprise name and verified phone in the session), their FSM keys summed."""
        buyers = await self.buyers(count)
        await asyncio.gather(*(self.purchase(b, lambda _: None, stop_after=MID_FLOW_STEP) for b in buyers))
        build = TaggedKeyBuilder().build
        session_keys = [build(StorageKey(bot_id=self.run.bot_id, chat_id=b.user.id, user_id=b.user.id), part)
                        for b in buyers for part in ("state", "data", "lock")]
        present = [k for k, n in zip(session_keys, await _exists_each(self.run.redis, session_keys), strict=True) if n]
        session = await self.run.memory_of(present)
        for buyer in buyers:
            self.telegram.forget(buyer.user.id)
        return {"session": session / count, "keys_per_session": len(present) / count}


class _Stop(Exception):
    pass


async def _exists_each(redis: Any, keys: list[str]) -> list[int]:
    pipe = redis.pipeline(transaction=False)
    for key in keys:
        pipe.exists(key)
    return await pipe.execute()


def _pair_ratio(ours: list[Side], theirs: list[Side]) -> float | None:
    """The median over rounds of (our updates/s ÷ theirs) in the same round."""
    ratios = sorted(o.per_s / t.per_s for o, t in zip(ours, theirs, strict=True) if t.per_s)
    if not ratios:
        return None
    mid = len(ratios) // 2
    return round(ratios[mid] if len(ratios) % 2 else (ratios[mid - 1] + ratios[mid]) / 2, 3)


def _median(sides: list[Side]) -> Side:
    ordered = sorted(sides, key=lambda s: s.per_s)
    return ordered[len(ordered) // 2]


def _merged_latencies(sides: list[Side]) -> Side:
    merged = Side(users=sides[0].users)
    for side in sides:
        merged.latencies += side.latencies
        merged.updates += side.updates
        merged.seconds += side.seconds
        merged.round_trips += side.round_trips
        merged.commands += side.commands
        merged.cpu_seconds += side.cpu_seconds
    return merged


def machine() -> dict[str, Any]:
    cpu = platform.processor() or ""
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {"cpus": os.cpu_count(), "cpu": cpu, "python": platform.python_version(),
            "platform": platform.platform(terse=True), "load_average": load_average()}


async def _redis_info(redis: Any) -> dict[str, Any]:
    server = await redis.info("server")
    return {"redis_version": server.get("redis_version")}


async def _used_memory(redis: Any) -> int:
    return int((await redis.info("memory"))["used_memory"])


def production_logging(settings: Any) -> None:
    """Logging as `python -m bot run` sets it up (level, format, aiogram's per-update line
    off), written to /dev/null: each line is still formatted, as in production. Both sides of
    the bench run in this one process, so both run under it."""
    from bot.runtime.logs import setup_logging

    setup_logging(settings.log_level, settings.log_format)
    handler = logging.getLogger().handlers[0]
    if isinstance(handler, logging.StreamHandler):
        handler.setStream(open(os.devnull, "w", encoding="utf-8"))  # noqa: SIM115 (the process's lifetime)


def process_settings(settings: Any) -> dict[str, Any]:
    """What both sides ran under (the same for both: one process, one set of settings)."""
    return {"process": {"gc_thresholds": list(settings.gc_thresholds), "heap_frozen_after_warm_up": True,
                        "log_level": settings.log_level, "log_format": settings.log_format,
                        "redis_pool": "FairConnectionPool, production client options",
                        "parsing": "Dispatcher.feed_raw_update (aiogram's Update.model_validate)",
                        "aiogram_tuning": settings.aiogram_tuning},
            "gc_thresholds": list(settings.gc_thresholds), "baseline_gc_thresholds": list(settings.gc_thresholds)}


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


@contextlib.asynccontextmanager
async def _session(redis_url: str, pool: int, users: int, **overrides: Any) -> Any:
    """A Run and its Bench; whatever happens, the run's keys are deleted at the end."""
    from config.settings import Settings

    production_logging(Settings(_env_file=None, bot_token=None, **overrides))
    run = Run(redis_url, pool)
    logging.getLogger().addHandler(run.errors)
    bench = None
    try:
        await run.redis.ping()
        bench = Bench(run, users, **overrides)
        yield run, bench
    finally:
        logging.getLogger().removeHandler(run.errors)
        with contextlib.suppress(Exception):
            await run.cleanup()
        if bench is not None:
            await bench.close()
        await run.close()


async def _warm_up(run: Run, bench: Bench, baseline: bool) -> None:
    """Scripts loaded, connections open, lazy imports and models built, on both sides; then
    what the process holds is frozen out of the collector's scans, as the bot process does
    once started (bot.runtime.gc_tuning), so that neither side's collections scan the other's
    modules and schemas, nor the bench's."""
    if baseline:
        await bench.baseline_round(WARMUP_USERS)
    _, warm = await bench.bot_round(WARMUP_USERS)
    await bench.verify(warm)
    await run.cleanup()
    gc_tuning.freeze_start_up()


async def bench(users: int, redis_url: str, rounds: int = DEFAULT_ROUNDS, profile_path: str | None = None,
                baseline: bool = True, pool: int = 64, same_traffic: bool = False,
                progress: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    """The benchmark: `rounds` alternating rounds of bare aiogram and the bot with `users` at once."""
    async with _session(redis_url, pool, users) as (run, bench):
        info = await _redis_info(run.redis)
        progress("warming up")
        await _warm_up(run, bench, baseline)
        if same_traffic:
            await bench.mirror_round(WARMUP_USERS)
        ours: list[Side] = []
        base: list[Side] = []
        mirror: list[Side] = []
        done, problems = 0, []
        purchase_memory: dict[str, int] = {}
        profile = cProfile.Profile() if profile_path else None
        for r in range(rounds):
            # Each round measures every side once, in an order that flips from round to round
            # (A B, B A, ...), so that a machine getting busier or quieter mid-run weighs on both.
            async def the_baseline(r: int) -> None:
                if baseline:
                    progress(f"round {r + 1}/{rounds}: bare aiogram, {users} users")
                    base.append(await bench.baseline_round(users))
                if same_traffic:
                    progress(f"round {r + 1}/{rounds}: bare aiogram with the purchase's Telegram traffic, {users} users")
                    mirror.append(await bench.mirror_round(users))

            async def the_bot(r: int) -> None:
                nonlocal done, problems, purchase_memory
                progress(f"round {r + 1}/{rounds}: the bot, {users} buyers")
                side, buyers = await bench.bot_round(users, profile if r == 0 else None)
                ours.append(side)
                ok, found = await bench.verify(buyers)
                done += ok
                problems += found
                if r == 0:
                    purchase_memory = await _purchase_memory(run)
                await run.cleanup()

            for part in ((the_baseline, the_bot) if r % 2 == 0 else (the_bot, the_baseline)):
                await part(r)
        progress("idle mid-flow sessions")
        memory = await bench.session_bytes()
        result = report(users, rounds, ours, base, memory, purchase_memory, done, problems, run.errors, info)
        result.update(process_settings(bench.settings))
        if mirror:
            mmid, mall = _median(mirror), _merged_latencies(mirror)
            result.update({
                "same_traffic_updates_per_s": round(mmid.per_s, 1),
                "ratio_vs_aiogram_same_traffic": _pair_ratio(ours, mirror),
                "same_traffic_cpu_ms_per_update": round(mall.cpu_ms_per_update, 3),
                "same_traffic_redis_roundtrips_per_update": round(mall.round_trips / mall.updates, 3),
                "same_traffic_p50_ms": round(mmid.pct(0.50), 3),
                "same_traffic_p99_ms": round(mmid.pct(0.99), 3),
                "same_traffic_rounds_updates_per_s": [round(x.per_s, 1) for x in mirror],
            })
        result["redis_pool"] = pool
        result["load_average_at_end"] = load_average()
        if profile is not None and profile_path:
            profile.dump_stats(profile_path)
            result["profile"] = profile_path
        return result


async def _purchase_memory(run: Run) -> dict[str, int]:
    """What the completed purchases left in Redis, by key family, without the enterprise
    directory the bench seeded (`{esign}:ent`, `{esign}:phone:…:ents`, `{esign}:ents`) or the baseline."""
    keys, _ = await run.our_keys()
    seeded = (redis_keys.enterprise(""), f"fsm:{run.baseline_bot_id}:", f"fsm:{run.mirror_bot_id}:")
    keys = [k for k in keys if not k.startswith(seeded) and not (k.startswith(redis_keys.NS + ":phone:") and k.endswith(":ents"))]
    return await run.memory_by_family(keys)


async def scale(points: list[int], redis_url: str, pool: int = 64,
                progress: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    """The bot alone at each N: throughput, latency, and the Redis memory its buyers leave."""
    rows: list[dict[str, Any]] = []
    async with _session(redis_url, pool, max(points)) as (run, bench):
        info = await _redis_info(run.redis)
        progress("warming up")
        await _warm_up(run, bench, baseline=False)
        for n in points:
            progress(f"{n} buyers at once")
            memory_before = await _used_memory(run.redis)
            side, buyers = await bench.bot_round(n)
            done, problems = await bench.verify(buyers)
            families = await _purchase_memory(run)
            total = sum(families.values())
            sessions = sum(v for k, v in families.items() if k.startswith("fsm:"))
            used_delta = await _used_memory(run.redis) - memory_before
            await run.cleanup()
            rows.append({
                "users": n,
                "updates": side.updates,
                "updates_per_s": round(side.per_s, 1),
                "cpu_ms_per_update": round(side.cpu_ms_per_update, 3),
                "p50_ms": round(side.pct(0.50), 3),
                "p99_ms": round(side.pct(0.99), 3),
                "redis_roundtrips_per_update": round(side.round_trips / side.updates, 3) if side.updates else None,
                "redis_bytes": total,
                "redis_bytes_per_user": round(total / n),
                "redis_session_bytes_per_user": round(sessions / n),
                "redis_used_memory_delta": used_delta,
                "purchases_completed": done,
                "problems": problems,
            })
        return {"scale": rows, "redis_pool": pool, "errors": run.errors.count,
                "machine": {**machine(), **info}, "round_trip": ROUND_TRIP}


def report(users: int, rounds: int, ours: list[Side], base: list[Side], memory: dict[str, float],
           purchase_memory: dict[str, int], done: int, problems: list[str], errors: ErrorCounter,
           info: dict[str, Any]) -> dict[str, Any]:
    mid = _median(ours)
    all_ours = _merged_latencies(ours)
    result: dict[str, Any] = {
        "users": users,
        "updates": mid.updates,
        "updates_per_user": len(PURCHASE_STEPS),
        "rounds": rounds,
        "updates_per_s": round(mid.per_s, 1),
        "baseline_updates_per_s": None,
        "ratio_vs_aiogram": None,
        "redis_roundtrips_per_update": round(all_ours.round_trips / all_ours.updates, 3),
        "redis_roundtrips_floor_per_update": ROUND_TRIP_FLOOR,
        "redis_commands_per_update": round(all_ours.commands / all_ours.updates, 3),
        "redis_bytes_per_session": round(memory["session"]),
        "redis_keys_per_session": memory["keys_per_session"],
        "redis_bytes_per_completed_purchase": round(sum(purchase_memory.values()) / users),
        "redis_bytes_per_completed_purchase_by_family": {k: round(v / users) for k, v in purchase_memory.items()},
        "cpu_ms_per_update": round(all_ours.cpu_ms_per_update, 3),
        "p50_ms": round(mid.pct(0.50), 3),
        "p99_ms": round(mid.pct(0.99), 3),
        "purchases": users * rounds,
        "purchases_completed": done,
        "errors": errors.count,
        "round_trip": ROUND_TRIP,
        "machine": {**machine(), **info},
        "rounds_updates_per_s": [round(s.per_s, 1) for s in ours],
    }
    if base:
        bmid = _median(base)
        all_base = _merged_latencies(base)
        result.update({
            "baseline_updates_per_s": round(bmid.per_s, 1),
            "ratio_vs_aiogram": _pair_ratio(ours, base),
            "rounds_ratio_vs_aiogram": [round(o.per_s / b.per_s, 3) for o, b in zip(ours, base, strict=True) if b.per_s],
            "baseline_redis_roundtrips_per_update": round(all_base.round_trips / all_base.updates, 3),
            "baseline_cpu_ms_per_update": round(all_base.cpu_ms_per_update, 3),
            "cpu_ratio_vs_aiogram": round(all_base.cpu_ms_per_update / all_ours.cpu_ms_per_update, 3),
            "baseline_p50_ms": round(bmid.pct(0.50), 3),
            "baseline_p99_ms": round(bmid.pct(0.99), 3),
            "baseline_rounds_updates_per_s": [round(s.per_s, 1) for s in base],
        })
    if problems:
        result["problems"] = problems
    if errors.first:
        result["first_error"] = errors.first
    return result


def table(result: dict[str, Any]) -> str:
    rows = [
        ("", "the bot (高级版 purchase)", "bare aiogram (linear flow)"),
        ("users at once", result["users"], result["users"]),
        ("updates per round", result["updates"], result["updates"]),
        ("updates/s (median round)", result["updates_per_s"], result["baseline_updates_per_s"]),
        ("rounds, updates/s", result["rounds_updates_per_s"], result.get("baseline_rounds_updates_per_s")),
        ("p50 per update, ms", result["p50_ms"], result.get("baseline_p50_ms")),
        ("p99 per update, ms", result["p99_ms"], result.get("baseline_p99_ms")),
        ("CPU ms / update (this process)", result["cpu_ms_per_update"], result.get("baseline_cpu_ms_per_update")),
        ("Redis round trips / update", result["redis_roundtrips_per_update"],
         result.get("baseline_redis_roundtrips_per_update")),
    ]
    width = max(len(str(r[0])) for r in rows)
    lines = [f"{a!s:<{width}}  {b!s:<26}  {'' if c is None else c}" for a, b, c in rows]
    families = ", ".join(f"{k} {v}" for k, v in result["redis_bytes_per_completed_purchase_by_family"].items())
    lines += [
        "",
        f"ratio vs aiogram:            {result['ratio_vs_aiogram']} (updates/s, the median of the rounds' "
        f"ratios {result.get('rounds_ratio_vs_aiogram')}; CPU per update: {result.get('cpu_ratio_vs_aiogram')})",
        f"both sides:                  {result['process']}",
        f"Redis round trips / update:  {result['redis_roundtrips_per_update']} "
        f"(floor {result['redis_roundtrips_floor_per_update']}: the user's lock in and out)",
        f"Redis commands / update:     {result['redis_commands_per_update']}",
        f"Redis bytes / idle session:  {result['redis_bytes_per_session']} "
        f"({result['redis_keys_per_session']:g} keys, MEMORY USAGE, mid-flow at the order confirmation)",
        f"Redis bytes / purchase:      {result['redis_bytes_per_completed_purchase']} ({families})",
        f"purchases completed:         {result['purchases_completed']}/{result['purchases']}, "
        f"errors logged: {result['errors']}",
        f"machine:                     {result['machine']['cpus']} x {result['machine']['cpu']}, "
        f"Python {result['machine']['python']}, Redis {result['machine']['redis_version']}, "
        f"Redis pool {result['redis_pool']} connections a side",
        f"load average:                {result['machine']['load_average']} at the start, "
        f"{result.get('load_average_at_end')} at the end",
    ]
    if "same_traffic_updates_per_s" in result:
        lines.insert(len(rows) + 2, f"ratio vs aiogram, same Telegram traffic: {result['ratio_vs_aiogram_same_traffic']} "
                     f"(bare aiogram answering the purchase's kinds of update as the bot does: "
                     f"{result['same_traffic_updates_per_s']} updates/s, {result['same_traffic_cpu_ms_per_update']} "
                     f"CPU ms and {result['same_traffic_redis_roundtrips_per_update']} round trips an update, "
                     f"p50 {result['same_traffic_p50_ms']} ms, p99 {result['same_traffic_p99_ms']} ms)")
    for problem in result.get("problems", []):
        lines.append(f"problem: {problem}")
    if result.get("first_error"):
        lines.append(f"first error: {result['first_error']}")
    return "\n".join(lines)


def scale_table(result: dict[str, Any]) -> str:
    head = ("users", "updates/s", "CPU ms/upd", "p50 ms", "p99 ms", "RT/upd", "Redis bytes", "bytes/user",
            "session bytes/user", "completed")
    lines = ["  ".join(f"{h:>10}" for h in head)]
    for row in result["scale"]:
        cells = (row["users"], row["updates_per_s"], row["cpu_ms_per_update"], round(row["p50_ms"], 1),
                 round(row["p99_ms"], 1), row["redis_roundtrips_per_update"], row["redis_bytes"],
                 row["redis_bytes_per_user"], row["redis_session_bytes_per_user"],
                 f"{row['purchases_completed']}/{row['users']}")
        lines.append("  ".join(f"{c!s:>10}" for c in cells))
    return "\n".join(lines)


def print_profile(path: str, limit: int = 30) -> str:
    out = io.StringIO()
    stats = pstats.Stats(path, stream=out)
    stats.sort_stats("tottime").print_stats(limit)
    return out.getvalue()


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bot bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--users", type=int, default=DEFAULT_USERS,
                        help=f"buyers at once (default {DEFAULT_USERS})")
    parser.add_argument("--redis", default=os.environ.get("BENCH_REDIS_URL", DEFAULT_REDIS_URL),
                        help=f"Redis URL with a database of the bench's own (default {DEFAULT_REDIS_URL}, "
                             "or $BENCH_REDIS_URL); only the keys the bench writes are deleted")
    parser.add_argument("--rounds", type=int, default=DEFAULT_ROUNDS,
                        help=f"alternating rounds of baseline and bot; the median is reported (default {DEFAULT_ROUNDS})")
    parser.add_argument("--pool", type=int, default=64,
                        help="Redis connections per side (default 64, as production's bot.runtime.redis_client)")
    parser.add_argument("--no-baseline", action="store_true", help="skip bare aiogram")
    parser.add_argument("--same-traffic", action="store_true",
                        help="also bare aiogram answering the purchase's kinds of update as the bot does "
                             "(keyboards, edits, answered taps and pre-checkouts)")
    parser.add_argument("--scale", metavar="N,N,...",
                        help="the scaling curve instead: the bot alone with each N (e.g. 10,100,1000,5000)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    parser.add_argument("--profile", metavar="FILE",
                        help="cProfile the bot's first round into FILE (pstats); its figures are then slower")
    args = parser.parse_args(argv)
    if args.users < 1 or args.rounds < 1 or args.pool < 1:
        parser.error("--users, --rounds and --pool must be at least 1")
    if args.scale:
        try:
            args.scale = [int(n) for n in args.scale.split(",") if n.strip()]
        except ValueError:
            parser.error("--scale takes numbers separated by commas, e.g. 10,100,1000")
        if not args.scale or min(args.scale) < 1:
            parser.error("--scale takes numbers separated by commas, e.g. 10,100,1000")
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    from redis.exceptions import RedisError

    from bot.cli.admin import redact_url

    progress = (lambda _: None) if args.json else (lambda text: print(f"... {text}", file=sys.stderr, flush=True))
    try:
        if args.scale:
            result = asyncio.run(scale(args.scale, args.redis, args.pool, progress))
        else:
            result = asyncio.run(bench(args.users, args.redis, args.rounds, args.profile,
                                       baseline=not args.no_baseline, pool=args.pool,
                                       same_traffic=args.same_traffic, progress=progress))
    except (OSError, RedisError) as exc:
        print(f"error: Redis at {redact_url(args.redis)} failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    result["redis_url"] = redact_url(args.redis)
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
    elif args.scale:
        print(scale_table(result))
    else:
        print(table(result))
        if args.profile:
            print(print_profile(args.profile), file=sys.stderr)
    if args.scale:
        complete = all(r["purchases_completed"] == r["users"] for r in result["scale"])
    else:
        complete = result["purchases_completed"] == result["purchases"]
    return 0 if complete and not result["errors"] else 1
