"""`python -m bot bench` runs end to end with a few buyers, and the wiring it measures
costs what docs/performance.md says in Redis round trips (counted, never timed: CI machines
are slow and shared, so no speed is ever asserted)."""
from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from aiogram.fsm.storage.base import StorageKey
from esign_devkit.bench.redis_counter import RedisCounter, counted_redis

from bot.state.conversations import ConversationStore
from tests.conftest import TEST_REDIS_URL

ROOT = Path(__file__).resolve().parent.parent
FIELDS = {
    "users", "updates", "updates_per_s", "baseline_updates_per_s", "ratio_vs_aiogram",
    "redis_roundtrips_per_update", "redis_bytes_per_session", "p50_ms", "p99_ms",
}


def run_bench(*args: str) -> tuple[int, str, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "bot", "bench", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    return proc.returncode, proc.stdout, proc.stderr


@pytest.fixture
async def bench_db(redis):
    """The tests' own database, emptied by the `redis` fixture; the bench must leave it empty."""
    yield TEST_REDIS_URL
    assert await redis.dbsize() == 0, "the bench left keys behind"


async def test_bench_json_has_every_figure_and_every_purchase_completes(bench_db):
    code, out, err = run_bench("-n", "5", "--rounds", "1", "--json", "--redis", bench_db)

    assert code == 0, err[-2000:]
    result = json.loads(out)
    assert result.keys() >= FIELDS
    assert result["users"] == 5
    assert result["updates"] == 5 * result["updates_per_user"] == 5 * 16
    assert result["purchases_completed"] == result["purchases"] == 5
    assert result["errors"] == 0
    # Measured, not estimated: the counters saw the lock's two round trips per update at least.
    assert result["redis_roundtrips_per_update"] >= result["redis_roundtrips_floor_per_update"] == 2
    assert result["redis_bytes_per_session"] > 0
    for key in ("updates_per_s", "baseline_updates_per_s", "ratio_vs_aiogram", "p50_ms", "p99_ms"):
        assert isinstance(result[key], int | float) and result[key] > 0, key
    # Like for like: both sides under the bot process's settings (one process, one set-up).
    assert result["gc_thresholds"] == result["baseline_gc_thresholds"] == [50_000, 20, 10]
    assert result["process"]["log_level"] == "INFO" and result["process"]["aiogram_tuning"] is True
    assert result["rounds_ratio_vs_aiogram"] and result["cpu_ratio_vs_aiogram"] > 0


async def test_bench_scale_reports_each_point(bench_db):
    code, out, err = run_bench("--scale", "2,4", "--json", "--redis", bench_db)

    assert code == 0, err[-2000:]
    rows = json.loads(out)["scale"]
    assert [r["users"] for r in rows] == [2, 4]
    assert all(r["purchases_completed"] == r["users"] and r["redis_bytes"] > 0 for r in rows)


async def test_each_step_of_the_purchase_costs_the_round_trips_documented(bench_db):
    """docs/performance.md, "Round trips per step": the user's lock in and out (2) on every
    step, plus the domain's own: the code sent (1), checked with the chat noted (1) and the
    phone's enterprises read to know whom the purchase is for (1), the enterprise priced on and
    the order created (2), the pre-checkout's read and its hold (2), the payment and the binding
    (a read and a checked write, 2 each), the binding screens' order and phone's enterprises
    (2 each)."""
    from esign_devkit.bench.run import PURCHASE_STEPS, Bench, Run

    from services import keys

    run = Run(bench_db)
    bench = Bench(run, 2)
    try:
        warm, buyer = await bench.buyers(2)
        await bench.purchase(warm, lambda _: None)  # scripts loaded, connections open
        costs: list[int] = []
        last = run.counter.round_trips

        def record(_: float) -> None:
            nonlocal last
            costs.append(run.counter.round_trips - last)
            last = run.counter.round_trips

        await bench.purchase(buyer, record)
        assert dict(zip(PURCHASE_STEPS, costs, strict=True)) == {
            "start": 2, "catalog": 2, "buy_now": 2, "edition": 2, "years": 2, "pack": 2, "review": 2, "enterprise_name": 2,
            "phone": 3, "code": 4, "submit": 4, "pre_checkout": 4, "payment": 4, "bind_now": 4, "bind_pick": 4,
            "bind_confirm": 4,
        }
        assert await run.redis.hgetall(keys.phone_chats(buyer.phone)) == {str(buyer.user.id): "zh"}

        # 首页 again: the lock, and the phone's enterprises for their overview; the chat was noted
        # with the code, so it is not written again.
        last = run.counter.round_trips
        await bench.dp.feed_raw_update(bench.bot, buyer.user.text("/start"))
        assert run.counter.round_trips - last == 3
        done, problems = await bench.verify([warm, buyer])
        assert done == 2, problems
    finally:
        await run.cleanup()
        await bench.close()
        await run.close()


def test_bench_refuses_bad_arguments():
    code, _, err = run_bench("--users", "0")
    assert code == 2 and "at least 1" in err


# --- the wiring the bench measures: what an update costs, pinned -------------------------------
# (Counts of Redis round trips, never times: esign_devkit.bench.redis_counter counts them on the client.)

KEY = StorageKey(bot_id=42, chat_id=7, user_id=7)


@pytest.fixture
async def counted(redis):
    """A counting client on the tests' database, and the conversation store on it."""
    counter = RedisCounter()
    client = counted_redis(TEST_REDIS_URL, counter)
    yield counter, ConversationStore(client, ttl_seconds=600, dedup_seconds=60), client
    await client.aclose()


async def test_an_update_costs_one_round_trip_in_and_one_out(counted, redis):
    counter, store, _ = counted
    await redis.set("fsm:{42:7:7}:state", "Buy:years")
    await redis.set("fsm:{42:7:7}:data", '{"session":{"cart":{"edition":"advanced"}}}')
    before = counter.round_trips

    async with store.open(KEY, update_id=1) as conversation:
        assert conversation.state == "Buy:years"
        assert json.loads(conversation.data) == {"session": {"cart": {"edition": "advanced"}}}
        conversation.set_data('{"session":{"cart":{"edition":"advanced","years":2}}}')
        conversation.set_state("Buy:pack")
        assert counter.round_trips - before == 1  # the lock, the dedup check and both reads

    assert counter.round_trips - before == 2  # the writes, the dedup mark and the unlock
    assert await redis.get("fsm:{42:7:7}:state") == "Buy:pack"
    assert json.loads(await redis.get("fsm:{42:7:7}:data")) == {"session": {"cart": {"edition": "advanced", "years": 2}}}
    assert 0 < await redis.ttl("fsm:{42:7:7}:data") <= 600
    assert await redis.exists("fsm:{42:7:7}:seen:1") and not await redis.exists("fsm:{42:7:7}:lock")


async def test_a_repeated_update_is_dropped_in_one_round_trip(counted, redis):
    counter, store, _ = counted
    async with store.open(KEY, update_id=2) as conversation:
        conversation.set_state("first")
    before = counter.round_trips

    async with store.open(KEY, update_id=2) as again:
        assert again is None

    assert counter.round_trips - before == 1
    assert await redis.get("fsm:{42:7:7}:state") == "first" and not await redis.exists("fsm:{42:7:7}:lock")


def test_sessions_load_from_text_as_session_from_data_does():
    from bot.state.session import Session

    for stored in ({}, {"session": {}}, {"session": {"cart": {"edition": "advanced", "years": 2},
                                                     "phone": "+8613800138000", "order_id": "o1"}}):
        text = json.dumps(stored) if stored else None
        assert Session.from_text(text) == Session.from_data(stored)
        assert Session.from_text(text).to_data() == Session.from_data(stored).to_data()


def test_a_session_is_stored_as_the_same_text_its_data_would_be():
    from bot.state.conversations import dumps
    from bot.state.session import Session
    from services.catalog import Cart

    assert Session().to_text() is None  # all defaults: nothing to keep (the data key is deleted)
    full = Session(cart=Cart(edition="advanced", years=2, pack_chosen=True), cart_id="c1",
                   enterprise_name="深圳基准测试科技有限公司", phone="+8613800138000", chat_noted="+8613800138000 zh",
                   order_id="o1")
    for session in (full, Session(enterprise_name="A \"quoted\" \\ name")):
        assert session.to_text() == dumps(session.to_data())
        assert Session.from_data(json.loads(session.to_text())) == session


async def test_bare_aiogram_alone_in_its_own_process(bench_db):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "esign_devkit.bench.bare", "-n", "4", "--rounds", "1", "--redis", bench_db],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout)
    assert result["updates"] == 4 * 15 and result["baseline_updates_per_s"] > 0
    assert result["redis_roundtrips_per_update"] == 6.0  # lock, state, data read and written, state, unlock
    # Nothing of the bot itself: no flows, no app, no middlewares in that process.
    assert not [m for m in result["bot_modules_loaded"] if m.startswith(("bot.flows", "bot.app", "bot.middlewares"))]


async def test_the_ablation_measures_each_variant_against_aiogram_in_one_process(bench_db):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "esign_devkit.bench.ablation", "-n", "3", "--rounds", "2", "--json",
                         "--redis", bench_db], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout)
    assert set(result["variants"]) == {"bare aiogram", "aiogram", "tuned"}
    assert result["purchases_completed"] == result["purchases"] == 2 * 2 * 3 and result["errors"] == 0
    tuned = result["variants"]["tuned"]
    assert len(tuned["rounds_cpu_ms_per_update"]) == len(tuned["rounds_cpu_saved"]) == 2
    assert isinstance(tuned["cpu_saved_vs_aiogram_walk"], float)
    # The tuning changes how handlers are found, never what an update costs in Redis.
    assert tuned["redis_roundtrips_per_update"] == result["variants"]["aiogram"]["redis_roundtrips_per_update"]


async def test_the_open_loop_reports_latency_for_the_bot_and_bare_aiogram(bench_db):
    from esign_devkit.openloop import rates

    rows = await rates([16], seconds=2, warm_up=1, processes=[1], bare=True, redis_url=bench_db,
                       progress=lambda _: None)
    assert [(r["side"], r["processes"], r["rate"]) for r in rows] == [("bot", 1, 16), ("bare", 1, 16)]
    for r in rows:
        assert r["measured_updates"] > 0 and r["answered"] + r["unanswered"] == r["measured_updates"]
        assert r["http_errors"] == 0 and r["bot_error_lines"] == 0
        assert r["p50_ms"] > 0 and set(r["cores_used"]) == {"bots", "driver", "redis"}


async def test_a_burst_of_buyers_all_complete_and_the_costs_are_reported(bench_db):
    from esign_devkit.openloop import burst

    result = await burst(6, within=1, processes=1, global_limit=0, redis_url=bench_db, progress=lambda _: None)
    assert result["completed"] == 6 and result["stuck"] == 0, result["first_stuck"]
    assert (result["orders"]["lost"], result["orders"]["doubled"]) == (0, 0)
    assert result["http_errors"] == 0 and result["bot_error_lines"] == 0, result["first_bot_errors"]
    assert result["updates"] == 6 * 16 and result["max_queue_depth"] >= 1
    assert result["redis_bytes_per_1000_purchases"] > 0 and result["bot_cpu_s_per_1000_purchases"] > 0
    assert result["rss_mb_idle"][0] > 0 and result["new_messages_total"] > 0
