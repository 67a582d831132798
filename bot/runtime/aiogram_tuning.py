"""aiogram's router walk, done in one pass (AIOGRAM_TUNING; docs/performance.md has what it earns).

For each event, aiogram visits every router of the tree in order: for each one it wraps the
router's outer middlewares around a closure, checks the router's own filters, then tries each
handler by running all its filters, copying the handler arguments at every step. With a tree of
many flow routers most of that work is spent on routers and handlers that cannot match.

`TunedDispatcher.propagate_event` takes the same steps in the same order, with the same
objects aiogram's public API exposes (`Router.sub_routers`, `Router.observers`,
`TelegramEventObserver.handlers`, `.check_root_filters`, `.middleware`, `.outer_middleware`,
`HandlerObject.filters` and `.call`, `FilterObject.call`), minus what cannot change the
outcome:
- a router whose subtree has no handler for the event's kind, or none that the conversation's
  state and the tap's prefix leave, is not visited (its own filters are not checked either:
  this relies on filters having no side effects and not changing `raw_state`, as the bot's
  have none and do not);
- a handler whose `StateFilter` (with plain states) rules out the conversation's `raw_state`,
  or whose `CallbackData.filter()` rules out the tap's prefix, is passed over before any of its
  filters run (both are necessary conditions of those very filters); a `StateFilter` that was
  decided that way is not run again;
- the handler arguments are copied once per router visited and once for the handler called.

The dispatcher's own outer middlewares for the event's kind run as aiogram runs them; a
sub-router with outer middlewares of its own for it is left to aiogram (`Router.propagate_event`),
and so is an event kind the dispatcher does not observe. The
plan is rebuilt whenever routers or handlers are added. tests/test_aiogram_tuning.py checks
that the same handler is chosen, with the same arguments, as by aiogram's own walk.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aiogram import Dispatcher, Router
from aiogram.dispatcher.event.bases import REJECTED, UNHANDLED, SkipHandler
from aiogram.dispatcher.event.handler import FilterObject, HandlerObject
from aiogram.dispatcher.event.telegram import TelegramEventObserver
from aiogram.dispatcher.middlewares.manager import MiddlewareManager
from aiogram.filters import StateFilter
from aiogram.filters.callback_data import CallbackQueryFilter
from aiogram.fsm.state import State
from aiogram.types import CallbackQuery, TelegramObject

ANY = object()  # a condition that holds whatever the state or prefix


@dataclass(frozen=True)
class Candidate:
    """A handler with what rules it out before its filters run."""

    handler: HandlerObject
    states: frozenset[str | None] | object  # ANY, or the raw states its StateFilter accepts
    prefix: tuple[str, str] | None  # (separator, prefix) of its CallbackData filter
    filters: tuple[FilterObject, ...]  # the filters still to run once the above hold


@dataclass
class Node:
    """A router whose subtree has handlers for one event kind."""

    router: Router
    observer: TelegramEventObserver | None
    candidates: tuple[Candidate, ...]
    middlewares: tuple[Any, ...]  # the inner middlewares of the chain, outermost first
    children: list[Node] = field(default_factory=list)
    aiogram_walks: bool = False  # outer middlewares of its own: aiogram's walk for this subtree
    by_key: dict[tuple[Any, Any], tuple[Candidate, ...]] = field(default_factory=dict)
    live_by_key: dict[tuple[Any, ...], bool] = field(default_factory=dict)
    separators: tuple[str, ...] = ()  # of the CallbackData filters in the subtree


def _plain_states(flt: StateFilter) -> frozenset[str | None] | None:
    """The raw states a StateFilter accepts, when it names only plain states (no "*", no groups)."""
    names: set[str | None] = set()
    for state in flt.states:
        if isinstance(state, State):
            state = state.state
        if state is not None and not isinstance(state, str):
            return None  # a StatesGroup: evaluated by the filter itself
        if state == "*":
            return None
        names.add(state)
    return frozenset(names)


def candidate(handler: HandlerObject) -> Candidate:
    states: frozenset[str | None] | object = ANY
    prefix = None
    rest: list[FilterObject] = []
    for flt in handler.filters or ():
        test = flt.callback
        if isinstance(test, StateFilter) and states is ANY and (plain := _plain_states(test)) is not None:
            states = plain  # decided before the filters run; not run again
            continue
        if isinstance(test, CallbackQueryFilter) and prefix is None:
            data = test.callback_data
            prefix = (data.__separator__, data.__prefix__)
        rest.append(flt)
    return Candidate(handler, states, prefix, tuple(rest))


def build(router: Router, kind: str, inherited: tuple[Any, ...] = ()) -> Node | None:
    """The plan of `router`'s subtree for events of `kind`, or None when it has no handler for them."""
    observer = router.observers.get(kind)
    middlewares = inherited + tuple(observer.middleware) if observer is not None else inherited
    children = [n for n in (build(sub, kind, middlewares) for sub in router.sub_routers) if n is not None]
    handlers = observer.handlers if observer is not None else []
    if not handlers and not children:
        return None
    node = Node(router, observer, tuple(candidate(h) for h in handlers), middlewares, children)
    node.aiogram_walks = observer is not None and len(observer.outer_middleware) > 0
    node.separators = tuple(sorted({c.prefix[0] for c in node.candidates if c.prefix}
                                   | {sep for child in children for sep in child.separators}))
    return node


def watched(router: Router, kind: str) -> tuple[Any, ...]:
    """What the plan depends on: each router's sub-routers, and its handlers and middlewares for
    `kind` (lists and managers whose lengths change when anything is added)."""
    out: list[Any] = []
    stack = [router]
    while stack:
        r = stack.pop()
        out.append(r.sub_routers)
        observer = r.observers.get(kind)
        if observer is not None:
            out += (observer.handlers, observer.middleware, observer.outer_middleware)
        stack.extend(r.sub_routers)
    return tuple(out)


@dataclass
class Plan:
    root: Node | None
    watched: tuple[Any, ...]
    lengths: tuple[int, ...]

    def current(self) -> bool:
        return tuple(map(len, self.watched)) == self.lengths


class TunedDispatcher(Dispatcher):
    """aiogram's Dispatcher with the router walk in one pass (see the module's docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._plans: dict[str, Plan] = {}

    def plan(self, kind: str) -> Node | None:
        plan = self._plans.get(kind)
        if plan is None or not plan.current():
            objects = watched(self, kind)
            plan = self._plans[kind] = Plan(build(self, kind), objects, tuple(map(len, objects)))
        return plan.root

    async def propagate_event(self, update_type: str, event: TelegramObject, **kwargs: Any) -> Any:
        node = self.plan(update_type)
        observer = self.observers.get(update_type)
        if node is None or observer is None:
            return await super().propagate_event(update_type, event, **kwargs)

        async def walk(telegram_event: TelegramObject, **data: Any) -> Any:
            return await _visit(node, update_type, telegram_event, data, _Tap(telegram_event))

        kwargs["event_router"] = self
        # The dispatcher's own outer middlewares for this kind, as aiogram runs them.
        return await observer.wrap_outer_middleware(walk, event=event, data=kwargs)


class _Tap:
    """A tap's callback data, split once per separator the handlers' CallbackData use."""

    __slots__ = ("data", "prefixes")

    def __init__(self, event: TelegramObject) -> None:
        self.data = event.data if isinstance(event, CallbackQuery) else None
        self.prefixes: dict[str, str | None] = {}

    def prefix(self, separator: str) -> str | None:
        if separator not in self.prefixes:
            self.prefixes[separator] = self.data.split(separator, 1)[0] if self.data else None
        return self.prefixes[separator]


def _rules_out(c: Candidate, state: Any, tap: _Tap) -> bool:
    return ((c.states is not ANY and state not in c.states)  # type: ignore[operator]
            or (c.prefix is not None and tap.prefix(c.prefix[0]) != c.prefix[1]))


def _live(node: Node, state: Any, tap: _Tap) -> bool:
    """Whether any handler of the subtree can match (a router left to aiogram always can)."""
    key = (state, *(tap.prefix(sep) for sep in node.separators))
    found = node.live_by_key.get(key)
    if found is None:
        found = node.aiogram_walks or bool(_possible(node, state, tap)) or any(
            _live(child, state, tap) for child in node.children)
        if len(node.live_by_key) < 4096:
            node.live_by_key[key] = found
    return found


def _possible(node: Node, state: Any, tap: _Tap) -> tuple[Candidate, ...]:
    """The node's handlers that the state and the tap's prefix do not rule out, in order."""
    first = next((c.prefix for c in node.candidates if c.prefix is not None), None)
    key = (state, tap.prefix(first[0]) if first else None)
    found = node.by_key.get(key)
    if found is None:
        found = tuple(c for c in node.candidates if not _rules_out(c, state, tap))
        # Only when every prefix uses the same separator is the first one a complete key.
        if len({c.prefix[0] for c in node.candidates if c.prefix}) <= 1 and len(node.by_key) < 4096:
            node.by_key[key] = found
    return found


async def _visit(node: Node, kind: str, event: TelegramObject, kwargs: dict[str, Any], tap: _Tap) -> Any:
    """Router._propagate_event and TelegramEventObserver.trigger for one router, then its subtree."""
    observer = node.observer
    if observer is not None:
        result, data = await observer.check_root_filters(event, **kwargs)
        if not result:
            return UNHANDLED
        if data is not kwargs:
            kwargs.update(data)
        if node.candidates:
            response = await _trigger(node, event, kwargs, tap)
            if response is REJECTED:
                return UNHANDLED
            if response is not UNHANDLED:
                return response
    state = kwargs.get("raw_state")
    for child in node.children:
        if not _live(child, state, tap):
            continue
        if child.aiogram_walks:
            response = await child.router.propagate_event(update_type=kind, event=event, **kwargs)
        else:
            response = await _visit(child, kind, event, {**kwargs, "event_router": child.router}, tap)
        if response is not UNHANDLED:
            return response
    return UNHANDLED


async def _trigger(node: Node, event: TelegramObject, kwargs: dict[str, Any], tap: _Tap) -> Any:
    """TelegramEventObserver.trigger over the handlers not ruled out: the first whose filters
    pass is called (through the chain's inner middlewares) and its answer returned."""
    acc = dict(kwargs)  # the trigger's own arguments: what a skipped handler's filters added stays
    for c in _possible(node, acc.get("raw_state"), tap):
        acc["handler"] = c.handler
        if c.filters:
            call = dict(acc)
            passed = True
            for flt in c.filters:
                check = await flt.call(event, **call)
                if not check:
                    passed = False
                    break
                if isinstance(check, dict):
                    call.update(check)
            if not passed:
                continue
            acc.update(call)
        try:
            if node.middlewares:
                return await MiddlewareManager.wrap_middlewares(node.middlewares, c.handler.call)(event, acc)
            return await c.handler.call(event, **acc)
        except SkipHandler:
            continue
    return UNHANDLED
