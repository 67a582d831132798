"""The tuned router walk (bot/runtime/aiogram_tuning.py) chooses the same handler, with the
same arguments, as aiogram's own walk: on a matrix of events and states over a router tree
with every feature the walk has to respect, and on the whole purchase as the bench drives it.
(The flow suite also runs once with AIOGRAM_TUNING=false in CI: .ci/run.)"""
from __future__ import annotations

import itertools
from typing import Any

import pytest
from aiogram import Dispatcher, F, Router
from aiogram.dispatcher.event.bases import REJECTED, UNHANDLED, SkipHandler
from aiogram.filters import StateFilter
from aiogram.filters.callback_data import CallbackData
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, Chat, Message, User

from bot.runtime.aiogram_tuning import TunedDispatcher
from tests.conftest import TEST_REDIS_URL


class Form(StatesGroup):
    name = State()
    phone = State()
    done = State()


class Pick(CallbackData, prefix="pk"):
    code: str


class Go(CallbackData, prefix="go"):
    to: str


class Odd(CallbackData, prefix="odd", sep="|"):
    v: str


def tree(dp: Dispatcher, calls: list[Any]) -> None:
    """Routers and handlers covering what the walk must keep: router filters that fail or add
    data, a sub-router of a router with no handlers, inner middlewares at several levels, a
    sub-router with an outer middleware, wildcard and group states, several CallbackData
    prefixes and separators, magic filters, a handler that skips, one that returns UNHANDLED,
    one that rejects."""

    def handler(name: str, outcome: Any = None):
        async def handle(event: Any, **data: Any) -> Any:
            extra = {k: data[k] for k in ("callback_data", "root", "mw", "outer", "dp_outer", "raw_state") if k in data}
            calls.append((name, extra, data["handler"].callback is handle, data["event_router"].name))
            if outcome is SkipHandler:
                raise SkipHandler
            return name if outcome is None else outcome

        return handle

    async def inner_mw(h: Any, event: Any, data: dict[str, Any]) -> Any:
        data["mw"] = [*data.get("mw", []), "dp"]
        return await h(event, data)

    dp.message.middleware(inner_mw)
    dp.callback_query.middleware(inner_mw)

    async def dp_outer(h: Any, event: Any, data: dict[str, Any]) -> Any:
        data["dp_outer"] = True
        return await h(event, data)

    dp.message.outer_middleware(dp_outer)

    staff = Router(name="staff")

    async def in_staff(event: Any) -> bool | dict[str, Any]:
        chat = event.chat if isinstance(event, Message) else event.message.chat
        return {"root": "staff"} if chat.id < 0 else False

    staff.message.filter(in_staff)
    staff.callback_query.filter(in_staff)
    staff.message(F.text == "/refunds")(handler("staff.refunds"))
    staff.callback_query(Go.filter(F.to == "refund"))(handler("staff.refund"))
    staff_sub = Router(name="staff_sub")
    staff_sub.message()(handler("staff.any"))
    staff.include_router(staff_sub)

    empty = Router(name="empty")  # no handlers of its own, one sub-router with some
    leaf = Router(name="leaf")

    async def leaf_mw(h: Any, event: Any, data: dict[str, Any]) -> Any:
        data["mw"] = [*data.get("mw", []), "leaf"]
        return await h(event, data)

    leaf.callback_query.middleware(leaf_mw)
    leaf.callback_query(StateFilter(Form.name), Pick.filter(F.code == "a"))(handler("leaf.pick_a"))
    leaf.callback_query(StateFilter(Form.name), Pick.filter())(handler("leaf.pick_any", SkipHandler))
    leaf.callback_query(StateFilter(Form.name, Form.phone), Pick.filter())(handler("leaf.pick_name_phone"))
    leaf.callback_query(Odd.filter())(handler("leaf.odd"))
    leaf.callback_query(StateFilter("*"), Go.filter(F.to == "wild"))(handler("leaf.wild"))
    leaf.callback_query(StateFilter(Form), Go.filter(F.to == "group"))(handler("leaf.group"))
    leaf.callback_query(StateFilter(None), Go.filter(F.to == "home"))(handler("leaf.home"))
    leaf.callback_query(Go.filter(F.to == "declines"))(handler("leaf.declines", UNHANDLED))
    leaf.callback_query(Go.filter(F.to == "rejects"))(handler("leaf.rejects", REJECTED))
    empty.include_router(leaf)

    steps = Router(name="steps")

    async def add_root(event: Any) -> dict[str, Any]:
        return {"root": "steps"}

    steps.message.filter(add_root)
    steps.message(StateFilter(Form.name), F.text)(handler("steps.name"))
    steps.message(StateFilter(Form.phone), F.contact)(handler("steps.phone_contact"))
    steps.message(StateFilter(Form.phone))(handler("steps.phone_other"))
    steps.message(F.text == "/start")(handler("steps.start"))

    outer = Router(name="outer")

    async def outer_mw(h: Any, event: Any, data: dict[str, Any]) -> Any:
        data["outer"] = True
        return await h(event, data)

    outer.callback_query.outer_middleware(outer_mw)
    outer.callback_query(Go.filter(F.to == "outer"))(handler("outer.go"))
    outer.callback_query(Go.filter(F.to == "declines"))(handler("outer.after_declined"))

    fallback = Router(name="fallback")
    fallback.message()(handler("fallback.message"))
    fallback.callback_query()(handler("fallback.tap"))
    dp.include_routers(staff, empty, steps, outer, fallback)


def events() -> list[tuple[str, Any]]:
    user = User(id=7, is_bot=False, first_name="U")
    made: list[tuple[str, Any]] = []
    for chat_id in (7, -100):
        chat = Chat(id=chat_id, type="private" if chat_id > 0 else "supergroup")
        for text in ("/start", "/refunds", "hello", None):
            made.append(("message", Message(message_id=1, date=0, chat=chat, from_user=user, text=text)))
        made.append(("message", Message(message_id=1, date=0, chat=chat, from_user=user,
                                        contact={"phone_number": "+8613800138000", "first_name": "U"})))
        shown = Message(message_id=2, date=0, chat=chat, from_user=user, text="screen")
        for data in ("pk:a", "pk:b", "pk", "pkx:a", "go:refund", "go:wild", "go:group", "go:home", "go:declines",
                     "go:rejects", "go:outer", "odd|1", "odd:1", "", "nonsense:1:2", None):
            made.append(("callback_query", CallbackQuery(id="q", from_user=user, chat_instance="c", data=data,
                                                         message=shown)))
    return made


STATES = (None, Form.name.state, Form.phone.state, Form.done.state, "Other:state")


async def outcome(dp: Dispatcher, kind: str, event: Any, state: str | None, calls: list[Any]) -> Any:
    calls.clear()
    result = await dp.propagate_event(update_type=kind, event=event, raw_state=state, extra="x")
    return result, list(calls)


@pytest.mark.parametrize("added_later", [False, True])
async def test_the_tuned_walk_chooses_what_aiogram_chooses(added_later):
    stock_calls: list[Any] = []
    tuned_calls: list[Any] = []
    stock, tuned = Dispatcher(), TunedDispatcher()
    tree(stock, stock_calls)
    tree(tuned, tuned_calls)
    if added_later:  # after a first event: the plan must notice new routers and handlers
        await tuned.propagate_event(update_type="message", event=events()[0][1], raw_state=None)
        for dp, calls in ((stock, stock_calls), (tuned, tuned_calls)):
            late = Router(name="late")

            async def late_handler(event: Any, calls: list[Any] = calls, **data: Any) -> str:
                calls.append(("late", {}, True, "late"))
                return "late"

            late.callback_query(StateFilter(Form.done))(late_handler)
            dp.sub_routers[1].sub_routers[0].include_router(late)  # under "leaf"
    checked = 0
    for (kind, event), state in itertools.product(events(), STATES):
        expected = await outcome(stock, kind, event, state, stock_calls)
        got = await outcome(tuned, kind, event, state, tuned_calls)
        assert got == expected, (kind, getattr(event, "data", getattr(event, "text", None)), state)
        checked += 1
    assert checked == len(events()) * len(STATES)
    # The matrix reaches every kind of outcome, so the comparison means something.
    names = set()
    for (kind, event), state in itertools.product(events(), STATES):
        _, calls = await outcome(stock, kind, event, state, stock_calls)
        names.update(c[0] for c in calls)
    assert {"staff.refunds", "staff.any", "leaf.pick_a", "leaf.pick_any", "leaf.pick_name_phone", "leaf.odd",
            "leaf.wild", "leaf.group", "leaf.home", "leaf.declines", "outer.after_declined", "leaf.rejects",
            "outer.go", "steps.name", "steps.phone_contact", "steps.phone_other", "steps.start",
            "fallback.message", "fallback.tap"} <= names
    if added_later:
        assert "late" in names


def test_the_setting_is_read_from_the_environment(monkeypatch):
    """CI runs the flow suite with AIOGRAM_TUNING=false: the harness's settings must see it."""
    from config.settings import Settings

    assert Settings(_env_file=None, bot_token=None).aiogram_tuning is True
    monkeypatch.setenv("AIOGRAM_TUNING", "false")
    assert Settings(_env_file=None, bot_token=None).aiogram_tuning is False


async def test_the_production_dispatcher_follows_the_setting():
    from aiogram import Bot

    from bot.app import build_context, build_dispatcher
    from config.settings import Settings
    from services.catalog import load_catalog

    for on in (True, False):
        settings = Settings(_env_file=None, bot_token=None, code_secret="t", aiogram_tuning=on)
        from redis.asyncio import Redis

        redis = Redis.from_url(TEST_REDIS_URL)
        try:
            app = build_context(settings, redis, catalog=load_catalog(settings.catalog_path))
            dp = build_dispatcher(app, Bot("1:x"))
            assert isinstance(dp, TunedDispatcher) is on
        finally:
            await redis.aclose()


async def test_the_whole_purchase_takes_the_same_handlers_with_the_tuning_on_and_off(redis):
    """The bench's 高级版 purchase, update by update: the handler each update reaches."""
    from esign_devkit.bench.run import PURCHASE_STEPS, Bench, Run

    run = Run(TEST_REDIS_URL)
    chosen: dict[bool, list[str]] = {}
    benches = []
    try:
        for on in (True, False):
            bench = Bench(run, 1, aiogram_tuning=on)
            benches.append(bench)
            assert isinstance(bench.dp, TunedDispatcher) is on
            seen: list[str] = []

            async def record(h: Any, event: Any, data: dict[str, Any], seen: list[str] = seen) -> Any:
                seen.append(data["handler"].callback.__qualname__)
                return await h(event, data)

            for observer in (bench.dp.message, bench.dp.callback_query, bench.dp.pre_checkout_query):
                observer.middleware(record)
            (buyer,) = await bench.buyers(1)
            await bench.purchase(buyer, lambda _: None)
            done, problems = await bench.verify([buyer])
            assert done == 1, problems
            chosen[on] = seen
        assert len(chosen[True]) == len(PURCHASE_STEPS)
        assert chosen[True] == chosen[False]
    finally:
        await run.cleanup()
        for bench in benches:
            await bench.close()
        await run.close()
