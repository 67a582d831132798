"""`python -m esign_devkit.bench.bare`: the bench's baseline alone, in a process that holds nothing of the bot.

`python -m bot bench` measures bare aiogram inside the bot's process (rounds alternating with
the bot's, the heap frozen after warm-up). This runs the same trivial flow
(esign_devkit.bench.baseline: aiogram's RedisStorage and RedisEventIsolation, 15 text messages a user,
each step reading the state, storing one field, moving on and replying) on the same fake
Telegram and Redis client, in a fresh process as an independent bare-aiogram script would:
CPython's collector settings, nothing frozen, no module of the bot imported. Compare its
updates/s with the bench's `updates_per_s` and `baseline_updates_per_s` run just before or after.

It writes only keys under a random bot id of its own and deletes them at the end.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import time
from typing import Any

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/14"
STEPS = 15  # the purchase's updates a buyer (esign_devkit.bench.run.PURCHASE_STEPS)
WARMUP_USERS = 10


async def run(users: int, rounds: int, redis_url: str) -> dict[str, Any]:
    from esign_devkit.bench.baseline import baseline_dispatcher
    from esign_devkit.bench.redis_counter import RedisCounter, counted_redis
    from esign_devkit.bench.telegram import BenchTelegram, BenchUser
    from esign_devkit.testing.fake_telegram import FakeUser

    bot_id = 9_500_000_000 + random.randrange(10**6, 9 * 10**6)
    counter = RedisCounter()
    redis = counted_redis(redis_url, counter)
    telegram = BenchTelegram(bot_id=bot_id)
    bot = telegram.make_bot()
    dp = baseline_dispatcher(redis, STEPS)
    next_uid = 7_000_000_000_000 + random.randrange(10**6) * 10**5

    async def one_round(count: int) -> dict[str, Any]:
        nonlocal next_uid
        people = []
        for _ in range(count):
            next_uid += 1
            people.append(BenchUser(telegram, FakeUser(id=next_uid, first_name=f"U{next_uid % 10000}",
                                                       language_code="zh-hans")))
        latencies: list[float] = []

        async def linear(user: BenchUser) -> None:
            for i in range(STEPS):
                raw = user.text(f"answer {i}")
                start = time.perf_counter()
                await dp.feed_raw_update(bot, raw)
                latencies.append(time.perf_counter() - start)
                telegram.trim(user.id)

        trips = counter.round_trips
        start, cpu = time.perf_counter(), time.process_time()
        await asyncio.gather(*(linear(u) for u in people))
        seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu
        for user in people:
            telegram.forget(user.id)
        latencies.sort()
        return {"updates": len(latencies), "updates_per_s": round(len(latencies) / seconds, 1),
                "cpu_ms_per_update": round(cpu_seconds * 1000 / len(latencies), 3),
                "redis_roundtrips_per_update": round((counter.round_trips - trips) / len(latencies), 3),
                "p50_ms": round(latencies[len(latencies) // 2] * 1000, 3),
                "p99_ms": round(latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))] * 1000, 3)}

    try:
        await redis.ping()
        await one_round(WARMUP_USERS)
        measured = [await one_round(users) for _ in range(rounds)]
    finally:
        keys = [k async for k in redis.scan_iter(match=f"fsm:{bot_id}:*", count=5000)]
        for i in range(0, len(keys), 1000):
            await redis.delete(*keys[i:i + 1000])
        await bot.session.close()
        await redis.aclose()
    median = sorted(measured, key=lambda r: r["updates_per_s"])[len(measured) // 2]
    return {"users": users, "rounds": rounds, "updates": median["updates"],
            "baseline_updates_per_s": median["updates_per_s"],
            "rounds_updates_per_s": [r["updates_per_s"] for r in measured],
            "cpu_ms_per_update": round(statistics.mean(r["cpu_ms_per_update"] for r in measured), 3),
            "redis_roundtrips_per_update": median["redis_roundtrips_per_update"],
            "p50_ms": median["p50_ms"], "p99_ms": median["p99_ms"]}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m esign_devkit.bench.bare", description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--users", type=int, default=200, help="users at once (default 200, as the bench)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; the median is reported (default 3)")
    parser.add_argument("--redis", default=os.environ.get("BENCH_REDIS_URL", DEFAULT_REDIS_URL),
                        help=f"Redis URL (default {DEFAULT_REDIS_URL}, or $BENCH_REDIS_URL)")
    args = parser.parse_args(argv)
    if args.users < 1 or args.rounds < 1:
        parser.error("--users and --rounds must be at least 1")
    result = asyncio.run(run(args.users, args.rounds, args.redis))
    loaded = sorted(m for m in sys.modules if m == "bot" or m.startswith("bot."))
    result["bot_modules_loaded"] = loaded  # the bench's helpers only: none of the bot's flows
    print(json.dumps(result, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
