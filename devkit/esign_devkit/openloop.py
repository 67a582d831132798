"""What a buyer feels: latency at a fixed arrival rate, and a burst of buyers.

    python -m bot openloop rates [--rates 50,200,500] [--seconds 60] [--processes 1,2] [--no-bare]
    python -m bot openloop burst [--buyers 5000] [--within 60] [--processes 1]

Processes (all on this machine):

    this process: the load generator, the Bot API stand-in and the SMS stand-in
        ── signed webhook POSTs ──> 1 or 2 × `python -m bot run` (webhook mode, production
                                    settings: LOG_LEVEL=INFO, GC_THRESHOLDS, the Redis pool)
                                    or bare aiogram (esign_devkit.bench.bare_webhook) ── Redis
        <── Bot API calls (HTTP) ──

`rates` is an open loop: updates are posted on a schedule, whether or not the bot has answered
the earlier ones. Buyers arrive at rate ÷ 8 a second; each sends the purchase's first eight
updates one second apart (/start · 购买套餐 · 立即购买 · 高级版 · 1年 · 不加购合同加量包 ·
产品选购页's 立即购买 · the enterprise name), so that after the first seconds the updates arrive at `rate` a second.
A tap is built on the screen the bot last sent; if that screen has not arrived yet (the bot is
more than a second behind) the buyer stops and is counted as `overrun`. Latency is from the
POST to the bot's screen (sendMessage / editMessageText) reaching the stand-in, for the updates
posted after the first `--warm-up` seconds. Bare aiogram gets eight text messages a buyer on the
same schedule (its trivial flow: state read, one field stored, a reply).

`burst` starts `--buyers` buyers at random moments within `--within` seconds; each completes
the whole purchase (16 updates, waiting for each answer, no pause), as in the webhook load test.
The stand-in answers as Telegram does when a chat gets more than a burst of 3 new messages at 1
a second (429 with retry_after), and counts new messages a second across chats (Telegram asks
for about 30 a second per bot; `--global-limit 30` enforces it with 429s too).

Every figure comes with the CPU each party used: the bot processes, this process (generator
and stand-ins) and the Redis server (INFO cpu; the server is shared with whatever else runs).
"""
from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

from esign_devkit.loadtest import BOT_COMMAND, LoadTest, cpu_seconds, pct

BARE_COMMAND = ("-m", "esign_devkit.bench.bare_webhook")
SCREENS = frozenset({"sendMessage", "editMessageText", "sendInvoice", "editMessageReplyMarkup"})
SENDS = frozenset({"sendMessage", "sendInvoice", "sendPhoto", "sendDocument", "copyMessage", "forwardMessage"})
BOT_STEPS = (("text", "/start"), ("tap", "nav:catalog"), ("tap", "nav:buy"), ("tap", "ed:advanced"),
             ("tap", "yr:1"), ("tap", "pk:none"), ("tap", "buy:buy_now"), ("name", ""))


def _telegram_class() -> type:
    from esign_devkit.loadtest import _load_telegram_class
    from esign_devkit.testing.fake_telegram import FakeApiError

    class OpenLoopTelegram(_load_telegram_class()):  # type: ignore[misc]
        """The stand-in: times each update from its POST to the bot's screen, and answers 429
        as Telegram does to more than a burst of new messages in one chat (or across chats)."""

        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.pending: dict[int, collections.deque[tuple[float, bool]]] = {}
            self.latencies: list[float] = []
            self.in_flight = 0
            self.max_in_flight = 0
            self.sends_by_second: collections.Counter[int] = collections.Counter()
            self.too_many = 0
            self.chat_buckets: dict[int, tuple[float, float]] = {}
            self.global_limit = 0  # new messages a second across chats; 0: counted, not enforced
            self.window: collections.deque[float] = collections.deque()
            self.api_calls = 0

        def posted(self, chat: int, measured: bool) -> None:
            self.pending.setdefault(chat, collections.deque()).append((time.monotonic(), measured))
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)

        def _limit(self, chat: int, now: float) -> None:
            tokens, updated = self.chat_buckets.get(chat, (3.0, now))
            tokens = min(3.0, tokens + (now - updated))
            if tokens < 1:
                self.too_many += 1
                self.chat_buckets[chat] = (tokens, now)
                raise FakeApiError(429, "Too Many Requests: retry after 1", retry_after=1)
            if self.global_limit:
                while self.window and self.window[0] <= now - 1:
                    self.window.popleft()
                if len(self.window) >= self.global_limit:
                    self.too_many += 1
                    raise FakeApiError(429, "Too Many Requests: retry after 1", retry_after=1)
                self.window.append(now)
            self.chat_buckets[chat] = (tokens - 1, now)

        async def call(self, method: str, params: Any) -> Any:
            self.api_calls += 1
            now = time.monotonic()
            chat = params.get("chat_id")
            if method in SENDS and chat is not None:
                self._limit(int(chat), now)
            result = await super().call(method, params)
            if method in SENDS:
                self.sends_by_second[int(now)] += 1
            if method in SCREENS and chat is not None:
                waiting = self.pending.get(int(chat))
                if waiting:
                    posted, measured = waiting.popleft()
                    self.in_flight -= 1
                    if measured:
                        self.latencies.append(time.monotonic() - posted)
            return result

    return OpenLoopTelegram


async def _redis_cpu(redis: Any) -> float:
    info = await redis.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def _rss_mb(pid: int) -> float:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    return 0.0


class Parties:
    """CPU seconds of each party between two readings."""

    def __init__(self, test: LoadTest) -> None:
        self.test = test

    async def read(self) -> dict[str, Any]:
        return {"bots": [cpu_seconds(p.pid) for p in self.test.procs], "driver": time.process_time(),
                "redis": await _redis_cpu(self.test.run.redis), "wall": time.monotonic()}

    @staticmethod
    def used(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
        wall = after["wall"] - before["wall"]
        bots = [round(a - b, 2) for a, b in zip(after["bots"], before["bots"], strict=True)]
        driver, redis = after["driver"] - before["driver"], after["redis"] - before["redis"]
        return {"seconds": round(wall, 1), "bot_cpu_s": bots, "driver_cpu_s": round(driver, 2),
                "redis_cpu_s": round(redis, 2),
                "cores_used": {"bots": round(sum(bots) / wall, 2), "driver": round(driver / wall, 2),
                               "redis": round(redis / wall, 2)}}


async def one_rate(side: str, processes: int, rate: float, seconds: float, warm_up: float, redis_url: str,
                   progress: Any) -> dict[str, Any]:
    from esign_devkit.bench.telegram import BenchUser
    from esign_devkit.testing.fake_telegram import FakeUser

    test = LoadTest(0, processes, redis_url, 0.0, 64, command=BOT_COMMAND if side == "bot" else BARE_COMMAND,
                    telegram_class=_telegram_class())
    tg = test.telegram
    try:
        await test.start()
        parties = Parties(test)
        steps = BOT_STEPS if side == "bot" else tuple(("text", f"answer {i}") for i in range(len(BOT_STEPS)))
        overrun = posted = 0
        lags: list[float] = []
        tasks: set[asyncio.Task[None]] = set()
        loop = asyncio.get_running_loop()
        start = loop.time() + 0.5
        before: dict[str, Any] = {}

        async def buyer(begin: float) -> None:
            nonlocal overrun, posted
            uid = test.run.new_uid()
            user = BenchUser(tg, FakeUser(id=uid, first_name=f"B{uid % 10000}", language_code="zh-hans"))
            for k, (kind, arg) in enumerate(steps):
                at = begin + k
                await asyncio.sleep(max(0.0, at - loop.time()))
                lag = loop.time() - at
                try:
                    update = (user.text(arg) if kind == "text" else user.tap(arg) if kind == "tap"
                              else user.text(f"深圳开环测试科技有限公司{uid % 10**7}"))
                except Exception:  # the screen to tap on has not arrived: the bot is behind
                    overrun += 1
                    return
                measured = warm_up <= at - start < seconds
                if measured:
                    lags.append(lag)
                    posted += 1
                tg.posted(uid, measured)
                await test.post(update)
                tg.trim(uid)

        # Buyers arrive at rate ÷ 8 a second, each sending 8 updates a second apart; the last
        # ones arrive at the end of the measured window.
        gap = len(steps) / rate
        progress(f"{side}, {processes} process(es), {rate:g} updates/s for {seconds:g} s")
        for i in range(int(seconds / gap) + 1):
            begin = start + i * gap
            await asyncio.sleep(max(0.0, begin - loop.time()))
            if not before and begin - start >= warm_up:
                before = await parties.read()
            task = asyncio.create_task(buyer(begin))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        await asyncio.sleep(max(0.0, start + seconds - loop.time()))
        after = await parties.read()
        if tasks:  # the last buyers' later updates, and their answers
            await asyncio.wait(set(tasks), timeout=30)
        await asyncio.sleep(1)
        answered = len(tg.latencies)
        late_posts = sum(1 for x in lags if x > 0.05)
        return {
            "side": side, "processes": processes, "rate": rate, "seconds": seconds, "warm_up": warm_up,
            "measured_updates": posted, "answered": answered, "unanswered": posted - answered, "overrun": overrun,
            "p50_ms": round(pct(tg.latencies, 0.50), 1), "p95_ms": round(pct(tg.latencies, 0.95), 1),
            "p99_ms": round(pct(tg.latencies, 0.99), 1), "max_ms": round(max(tg.latencies, default=0) * 1000, 1),
            "max_in_flight": tg.max_in_flight, "generator_p99_lag_ms": round(pct(lags, 0.99), 1),
            "generator_late_posts": late_posts, "http_errors": test.stats.http_errors,
            "bot_error_lines": len(test.bot_errors()), **Parties.used(before or after, after),
            "load_average": [round(x, 2) for x in os.getloadavg()],
        }
    finally:
        await test.stop()
        with contextlib.suppress(Exception):
            await test.run.cleanup()
        await test.run.close()


async def rates(rate_list: list[float], seconds: float, warm_up: float, processes: list[int], bare: bool,
                redis_url: str, progress: Any) -> list[dict[str, Any]]:
    rows = []
    for rate in rate_list:
        sides = [("bot", p) for p in processes] + ([("bare", p) for p in processes] if bare else [])
        for side, count in sides:
            rows.append(await one_rate(side, count, rate, seconds, warm_up, redis_url, progress))
    return rows


async def burst(buyers: int, within: float, processes: int, global_limit: int, redis_url: str,
                progress: Any, step_timeout: float = 60.0) -> dict[str, Any]:
    from bot.app import build_context
    from config.settings import Settings
    from esign_devkit.bench.run import Buyer, _purchase_memory
    from esign_devkit.bench.telegram import BenchUser
    from esign_devkit.testing.fake_telegram import FakeUser
    from services.enterprises import Role

    test = LoadTest(buyers, processes, redis_url, 0.0, 64, telegram_class=_telegram_class())
    tg = test.telegram
    tg.global_limit = global_limit
    test.step_timeout = step_timeout
    try:
        await test.start()
        app = build_context(Settings(_env_file=None, bot_token=None, code_secret="loadtest-secret"), test.run.redis,
                            sms=test.sms)
        people = []
        for _ in range(buyers):
            uid, phone = test.run.new_uid(), test.run.new_phone()
            fake = FakeUser(id=uid, first_name=f"Buyer{uid % 10000}", language_code="zh-hans", phone=phone)
            people.append(Buyer(BenchUser(tg, fake), phone, f"深圳突发测试科技有限公司{uid % 10**7}"))
        gate = asyncio.Semaphore(100)

        async def seed(b: Any) -> None:
            async with gate:
                ent = await app.enterprises.add(b.enterprise_name, verified=True)
                test.run.enterprise_ids.add(ent.id)
                await app.enterprises.add_member(ent.id, b.phone, Role.MEMBER)
                b.enterprise_id = ent.id

        progress(f"seeding {buyers} buyers' enterprises")
        await asyncio.gather(*(seed(b) for b in people))
        memory_before = int((await test.run.redis.info("memory"))["used_memory"])
        rss_idle = [_rss_mb(p.pid) for p in test.procs]
        parties = Parties(test)
        before = await parties.read()
        peak_memory = memory_before
        peak_rss = list(rss_idle)
        in_flight_posts = 0
        max_in_flight_posts = 0
        post = test.post

        async def counted_post(update: dict[str, Any], *, duplicate: bool = False) -> None:
            nonlocal in_flight_posts, max_in_flight_posts
            in_flight_posts += 1
            max_in_flight_posts = max(max_in_flight_posts, in_flight_posts)
            try:
                await post(update, duplicate=duplicate)
            finally:
                in_flight_posts -= 1

        test.post = counted_post  # type: ignore[method-assign]

        async def one(b: Any) -> None:
            await asyncio.sleep(random.uniform(0, within))
            await test.purchase(b)

        async def sample() -> None:
            nonlocal peak_memory
            while True:
                peak_memory = max(peak_memory, int((await test.run.redis.info("memory"))["used_memory"]))
                for i, p in enumerate(test.procs):
                    peak_rss[i] = max(peak_rss[i], _rss_mb(p.pid))
                await asyncio.sleep(1)

        progress(f"{buyers} buyers starting within {within:g} s")
        sampler = asyncio.create_task(sample())
        started = time.monotonic()
        await asyncio.gather(*(one(b) for b in people))
        seconds = time.monotonic() - started
        sampler.cancel()
        after = await parties.read()
        rss_end = [_rss_mb(p.pid) for p in test.procs]
        await asyncio.sleep(0.5)
        for b in people:
            if b.order_id:
                test.run.order_ids.add(b.order_id)
        progress("checking the orders")
        orders = await test.check_orders(people)
        left = await _purchase_memory(test.run)
        memory_after = int((await test.run.redis.info("memory"))["used_memory"])
        used = Parties.used(before, after)
        done = orders["bound_once"]
        sends = tg.sends_by_second
        return {
            "buyers": buyers, "within_s": within, "processes": processes, "seconds": round(seconds, 1),
            "completed": done, "orders": orders, "stuck": len(test.stats.stuck), "first_stuck": test.stats.stuck[:3],
            "updates": len(test.stats.update_latencies),
            "update_p50_ms": round(pct(test.stats.update_latencies, 0.50), 1),
            "update_p99_ms": round(pct(test.stats.update_latencies, 0.99), 1),
            "update_max_ms": round(max(test.stats.update_latencies, default=0) * 1000, 1),
            "max_queue_depth": max_in_flight_posts,
            "redis_used_memory_before": memory_before, "redis_used_memory_peak": peak_memory,
            "redis_used_memory_after": memory_after,
            "redis_bytes_left_per_purchase": round(sum(left.values()) / max(1, done)),
            "redis_bytes_per_1000_purchases": round(sum(left.values()) / max(1, done) * 1000),
            "rss_mb_idle": rss_idle, "rss_mb_peak": peak_rss, "rss_mb_end": rss_end,
            "bot_cpu_s_per_1000_purchases": round(sum(used["bot_cpu_s"]) / max(1, done) * 1000, 1),
            "redis_cpu_s_per_1000_purchases": round(used["redis_cpu_s"] / max(1, done) * 1000, 1),
            "api_calls": tg.api_calls, "new_messages_max_per_s": max(sends.values(), default=0),
            "new_messages_total": sum(sends.values()), "answered_429": tg.too_many, "global_limit": global_limit,
            "http_errors": test.stats.http_errors, "bot_error_lines": len(test.bot_errors()),
            "first_bot_errors": test.bot_errors()[:3], **used,
            "load_average": [round(x, 2) for x in os.getloadavg()],
        }
    finally:
        await test.stop()
        with contextlib.suppress(Exception):
            await test.run.cleanup()
        await test.run.close()


def rates_table(rows: list[dict[str, Any]]) -> str:
    head = (f"{'side':5} {'proc':>4} {'rate/s':>6} {'posted':>7} {'answered':>8} {'overrun':>7} {'p50 ms':>8} "
            f"{'p95 ms':>8} {'p99 ms':>8} {'max q':>6} {'gen lag p99':>11} {'CPU cores: bots / driver / redis':>34} "
            f"{'load':>16}")
    lines = [head]
    for r in rows:
        cores = r["cores_used"]
        lines.append(f"{r['side']:5} {r['processes']:>4} {r['rate']:>6g} {r['measured_updates']:>7} {r['answered']:>8} "
                     f"{r['overrun']:>7} {r['p50_ms']:>8} {r['p95_ms']:>8} {r['p99_ms']:>8} {r['max_in_flight']:>6} "
                     f"{r['generator_p99_lag_ms']:>11} "
                     f"{cores['bots']:>14} / {cores['driver']:>5} / {cores['redis']:>5}       {r['load_average']!s:>16}")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    from esign_devkit.bench.run import DEFAULT_REDIS_URL

    parser = argparse.ArgumentParser(prog="python -m bot openloop", description=__doc__.split("\n\n")[0])
    parser.add_argument("mode", choices=("rates", "burst"))
    parser.add_argument("--redis", default=os.environ.get("BENCH_REDIS_URL", DEFAULT_REDIS_URL))
    parser.add_argument("--rates", default="50,200,500", help="updates a second (default 50,200,500)")
    parser.add_argument("--seconds", type=float, default=60, help="measured seconds at each rate (default 60)")
    parser.add_argument("--warm-up", type=float, default=10, help="seconds at each rate before measuring (default 10)")
    parser.add_argument("--processes", default=None, help="rates: bot processes, e.g. 1,2 (default); burst: one number")
    parser.add_argument("--no-bare", action="store_true", help="rates: skip bare aiogram")
    parser.add_argument("--buyers", type=int, default=5000, help="burst: buyers (default 5000)")
    parser.add_argument("--within", type=float, default=60, help="burst: seconds in which they start (default 60)")
    parser.add_argument("--global-limit", type=int, default=0,
                        help="burst: answer 429 beyond this many new messages a second across chats (default: count only)")
    parser.add_argument("--step-timeout", type=float, default=60,
                        help="burst: seconds a buyer waits for one answer before giving up (default 60)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    progress = (lambda _: None) if args.json else (lambda text: print(f"... {text}", file=sys.stderr, flush=True))
    if args.mode == "rates":
        processes = [int(p) for p in (args.processes or "1,2").split(",")]
        rows = asyncio.run(rates([float(r) for r in args.rates.split(",")], args.seconds, args.warm_up, processes,
                                 not args.no_bare, args.redis, progress))
        print(json.dumps(rows, ensure_ascii=False) if args.json else rates_table(rows))
        return 0 if all(not r["http_errors"] and not r["bot_error_lines"] for r in rows) else 1
    result = asyncio.run(burst(args.buyers, args.within, int(args.processes or 1), args.global_limit, args.redis,
                               progress, args.step_timeout))
    print(json.dumps(result, ensure_ascii=False, indent=None if args.json else 1))
    return 0 if result["completed"] == args.buyers and not result["http_errors"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
