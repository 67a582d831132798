"""Issue 7: `python -m bot bench` runs end to end with a few buyers, and the wiring it measures
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
from bot.state.storage import build_storage
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
    assert FIELDS <= result.keys()
    assert result["users"] == 5
    assert result["updates"] == 5 * result["updates_per_user"] == 5 * 15
    assert result["purchases_completed"] == result["purchases"] == 5
    assert result["errors"] == 0
    # Measured, not estimated: the counters saw the lock's two round trips per update at least.
    assert result["redis_roundtrips_per_update"] >= result["redis_roundtrips_floor_per_update"] == 2
    assert result["redis_bytes_per_session"] > 0
    for key in ("updates_per_s", "baseline_updates_per_s", "ratio_vs_aiogram", "p50_ms", "p99_ms",
                "baseline_same_gc_updates_per_s", "ratio_vs_aiogram_same_gc"):
        assert isinstance(result[key], int | float) and result[key] > 0, key
    # The bot's rounds run under its process's collector settings, bare aiogram's under CPython's.
    assert result["gc_thresholds"] == [50_000, 20, 10]
    assert result["baseline_gc_thresholds"] == [700, 10, 10]


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
        assert dict(zip(PURCHASE_STEPS, costs)) == {
            "start": 2, "catalog": 2, "buy_now": 2, "edition": 2, "years": 2, "pack": 2, "enterprise_name": 2,
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
    """A counting client on the tests' database, and its storage and per-user lock."""
    counter = RedisCounter()
    client = counted_redis(TEST_REDIS_URL, counter)
    storage, isolation = build_storage(client, 600)
    yield counter, storage, isolation, client
    await client.aclose()


async def test_an_update_costs_one_round_trip_in_and_one_out(counted, redis):
    counter, storage, isolation, _ = counted
    await redis.set("fsm:{42:7:7}:state", "Buy:years")
    await redis.set("fsm:{42:7:7}:data", '{"session":{"cart":{"edition":"advanced"}}}')
    before = counter.round_trips

    async with isolation.session(KEY, seen=("fsm:{42:7:7}:seen:1", 60)) as fresh:
        assert fresh
        assert await storage.get_state(KEY) == "Buy:years"
        data = await storage.get_data(KEY)
        assert data == {"session": {"cart": {"edition": "advanced"}}}
        data["session"]["cart"]["years"] = 2
        await storage.set_data(KEY, data)
        await storage.set_state(KEY, "Buy:pack")
        assert counter.round_trips - before == 1  # the lock, the dedup check and both reads

    assert counter.round_trips - before == 2  # the writes, the dedup mark and the unlock
    assert await redis.get("fsm:{42:7:7}:state") == "Buy:pack"
    assert json.loads(await redis.get("fsm:{42:7:7}:data")) == {"session": {"cart": {"edition": "advanced", "years": 2}}}
    assert 0 < await redis.ttl("fsm:{42:7:7}:data") <= 600
    assert await redis.exists("fsm:{42:7:7}:seen:1") and not await redis.exists("fsm:{42:7:7}:lock")


async def test_a_repeated_update_is_dropped_in_one_round_trip(counted, redis):
    counter, storage, isolation, _ = counted
    async with isolation.session(KEY, seen=("fsm:{42:7:7}:seen:2", 60)) as fresh:
        assert fresh
        await storage.set_state(KEY, "first")
    before = counter.round_trips

    async with isolation.session(KEY, seen=("fsm:{42:7:7}:seen:2", 60)) as fresh:
        assert fresh is False

    assert counter.round_trips - before == 1
    assert await redis.get("fsm:{42:7:7}:state") == "first" and not await redis.exists("fsm:{42:7:7}:lock")


async def test_a_failed_update_stores_nothing_is_not_marked_and_frees_the_user(counted, redis):
    _, storage, isolation, _ = counted
    await redis.set("fsm:{42:7:7}:state", "before")

    with pytest.raises(RuntimeError):
        async with isolation.session(KEY, seen=("fsm:{42:7:7}:seen:3", 60)):
            await storage.set_state(KEY, "after")
            raise RuntimeError("the handler failed")

    assert await redis.get("fsm:{42:7:7}:state") == "before"
    assert not await redis.exists("fsm:{42:7:7}:seen:3")  # a redelivery is handled again
    assert not await redis.exists("fsm:{42:7:7}:lock")


async def test_two_updates_of_one_user_take_turns(counted, redis):
    _, storage, isolation, _ = counted
    order: list[str] = []

    async def update(name: str, pause: float) -> None:
        async with isolation.session(KEY, seen=(f"fsm:{{42:7:7}}:seen:{name}", 60)):
            order.append(f"{name} in")
            state = await storage.get_state(KEY)
            await asyncio.sleep(pause)
            await storage.set_state(KEY, f"{state or ''}{name}")
            order.append(f"{name} out")

    await asyncio.gather(update("a", 0.05), update("b", 0))

    assert order in (["a in", "a out", "b in", "b out"], ["b in", "b out", "a in", "a out"])
    assert await redis.get("fsm:{42:7:7}:state") in ("ab", "ba")  # each saw the other's write


def test_sessions_load_as_session_from_data_does():
    from bot.middlewares import load_session
    from bot.state.session import Session

    for stored in ({}, {"session": {}}, {"session": {"cart": {"edition": "advanced", "years": 2},
                                                     "phone": "+8613800138000", "order_id": "o1"}}):
        assert load_session(stored) == Session.from_data(stored)
        assert load_session(stored).to_data() == Session.from_data(stored).to_data()


async def test_skipping_handlers_early_never_changes_which_handler_runs():
    from aiogram import BaseMiddleware, F, Router
    from aiogram.dispatcher.event.bases import UNHANDLED, SkipHandler
    from aiogram.filters import StateFilter
    from aiogram.fsm.state import State, StatesGroup
    from aiogram.types import CallbackQuery, Chat, Message, User

    from bot.callbacks import Nav, PickYears
    from bot.middlewares import speed_up_dispatch

    class G(StatesGroup):
        a = State()
        b = State()

    def named(name: str):
        async def handler(event, **data) -> str:
            return f"{name} (from {data['event_router'].name}, tag {data.get('tag')})"
        return handler

    async def skips(event) -> None:
        raise SkipHandler

    async def declines(event):
        return UNHANDLED

    class Tagging(BaseMiddleware):  # an outer middleware: its router is left to aiogram
        async def __call__(self, handler, event, data):
            data["tag"] = "outer"
            return await handler(event, data)

    def router(fast: bool) -> Router:
        root, empty, first, nested, guarded = (Router(name=n) for n in ("root", "empty", "first", "nested", "guarded"))
        outer, late = Router(name="outer"), Router(name="late")
        first.callback_query(G.a, Nav.filter(F.to == "x"))(named("G:a + nav x"))
        first.callback_query(Nav.filter(F.to == "skip"))(skips)
        first.callback_query(Nav.filter(F.to == "skip"))(named("after a skip"))
        first.callback_query(PickYears.filter(F.years == 3))(declines)  # unhandled: on to the sub-routers
        first.callback_query(StateFilter(G.b, None), PickYears.filter())(named("G:b or none + years"))
        nested.callback_query(StateFilter(G), Nav.filter())(named("any of G + nav"))
        nested.callback_query(StateFilter("*"), F.data == "raw")(named("any state + raw"))
        nested.callback_query(PickYears.filter())(named("nested years"))
        guarded.callback_query.filter(lambda query: query.data != "nav:home")  # a router's own filter
        guarded.callback_query.filter(lambda query: {"tag": "root filter"})  # ... that adds data
        guarded.callback_query(Nav.filter())(named("nav, unless home"))
        guarded.message.filter(F.text != "stop")
        guarded.message(F.text == "deep")(named("deep text"))
        outer.callback_query.outer_middleware(Tagging())
        outer.callback_query(F.data == "navx")(named("outer navx"))
        outer.message(G.a)(named("outer G:a"))
        root.callback_query(Nav.filter(F.to == "home"))(named("home"))
        root.message(G.b, F.text)(named("G:b + text"))
        root.message(F.text == "hello")(named("hello"))
        first.include_router(nested)
        guarded.include_router(Router(name="under guarded"))
        root.include_routers(empty, first, guarded, outer)
        if fast:
            speed_up_dispatch(root)
        # Added after the speed-up: honoured all the same.
        root.message(F.text)(named("text"))
        root.include_router(late)
        late.callback_query(F.data == "")(named("late empty data"))
        late.callback_query()(named("late anything"))
        return root

    user = User(id=1, is_bot=False, first_name="A")
    taps = ("nav:x", "nav:home", "nav:other", "nav:skip", "yr:2", "yr:3", "yr:two", "raw", "nav", "navx", "nav:",
            "", None, "ed:advanced")
    events = [("callback_query", CallbackQuery(id="1", from_user=user, chat_instance="c", data=data)) for data in taps]
    events += [("message", Message(message_id=1, date=0, chat=Chat(id=1, type="private"), text=text))
               for text in ("hello", "deep", "stop", "other", None)]
    slow, fast = router(False), router(True)
    seen = set()
    for raw_state in (None, "G:a", "G:b", "Other:s"):
        for kind, event in events:
            expected = await slow.propagate_event(kind, event, raw_state=raw_state)
            assert await fast.propagate_event(kind, event, raw_state=raw_state) == expected, (kind, event, raw_state)
            seen.add(expected)
    assert UNHANDLED in seen and len(seen) >= 14  # the matrix reaches most handlers, and misses some



def test_a_session_is_stored_as_the_same_text_its_data_would_be():
    from bot.state.session import Session
    from bot.state.storage import _dumps
    from services.catalog import Cart

    assert Session().to_text() is None  # all defaults: nothing to keep (the data key is deleted)
    full = Session(cart=Cart(edition="advanced", years=2, pack_chosen=True), cart_id="c1",
                   enterprise_name="深圳基准测试科技有限公司", phone="+8613800138000", chat_noted="+8613800138000 zh",
                   order_id="o1")
    for session in (full, Session(enterprise_name="A \"quoted\" \\ name")):
        assert session.to_text() == _dumps(session.to_data())
        assert Session.from_data(json.loads(session.to_text())) == session


async def test_bare_aiogram_alone_in_its_own_process(bench_db):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "esign_devkit.bench.bare", "-n", "4", "--rounds", "1", "--redis", bench_db],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout)
    assert result["updates"] == 4 * 15 and result["baseline_updates_per_s"] > 0
    assert result["redis_roundtrips_per_update"] == 6.0  # lock, state, data read and written, state, unlock
    # Nothing of the bot itself: no flows, no app, no middlewares in that process.
    assert not [m for m in result["bot_modules_loaded"] if m.startswith(("bot.flows", "bot.app", "bot.middlewares"))]
