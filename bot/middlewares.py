"""Update middlewares, outermost first: the user's lock with the dedup check and the stored
conversation (one Redis round trip in, one out), drop repeated updates, one storage write per
update, then the conversation's session and the user's language for the handlers."""
from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from inspect import isclass
from typing import Any

from aiogram import BaseMiddleware, Dispatcher, Router
from aiogram.fsm.context import FSMContext
from aiogram.filters import StateFilter
from aiogram.dispatcher.event.bases import REJECTED, UNHANDLED, SkipHandler
from aiogram.dispatcher.event.handler import FilterObject
from aiogram.filters.callback_data import CallbackQueryFilter
from aiogram.fsm.middleware import FSMContextMiddleware
from aiogram.fsm.state import State, StatesGroup
from aiogram.methods import AnswerCallbackQuery, CopyMessage, CreateForumTopic, EditMessageText, SendMessage
from aiogram.methods.base import Response
from aiogram.types import CallbackQuery, TelegramObject, Update, User
from redis.asyncio import Redis

from bot.flow import Flow
from bot.state.session import Session
from bot.state.storage import SessionIsolation, UnitOfWorkStorage
from config.texts import Texts, language_of
from services import keys
from services.orders import read_once as read_orders_once

log = logging.getLogger(__name__)

# aiogram parses every Bot API reply with `Response[method.__returning__]`, a pydantic generic
# model built on first use and cached only weakly: each garbage collection drops them, and the
# next reply rebuilds one (5-15 ms of schema building). The bench saw one rebuild every ~20
# updates, about a tenth of the CPU. Holding the ones the bot's methods return keeps them built.
KEPT_RESPONSE_MODELS = tuple(Response[m.__returning__] for m in (
    SendMessage, EditMessageText, AnswerCallbackQuery, CopyMessage, CreateForumTopic))

Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]
DEDUPLICATED = "update_deduplicated"  # set in the data when SessionLock checked the update id
UNLOCKED = "conversation_unlocked"  # set when the update runs outside the user's lock: it reads, never writes


class SessionLock(FSMContextMiddleware):
    """aiogram's FSM middleware (same context, same per-user lock, state loaded under the lock,
    issue 1317), with the update's dedup check folded into the lock: taking the lock, checking
    the conversation's `seen:<update_id>` mark and reading the state and data are one round trip
    (SessionIsolation); storing what changed, marking the update handled and unlocking are one
    more. A repeated update is dropped before any handler sees it. The mark is written only
    when the update succeeded, so a redelivery of a failed one is handled again.

    A pre-checkout query is not put behind the lock: Telegram needs its answer within 10 s,
    whatever another update of the user is doing (or a dead process's lock still holds), and
    it checks the order, not the conversation. It may read the conversation (one round trip)
    and never writes it (UNLOCKED); DropRepeatedUpdates deduplicates it."""

    def __init__(self, storage: UnitOfWorkStorage, events_isolation: SessionIsolation, strategy: Any,
                 dedup_seconds: int) -> None:
        super().__init__(storage=storage, events_isolation=events_isolation, strategy=strategy)
        self.dedup_seconds = dedup_seconds

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        bot = data["bot"]
        context = self.resolve_event_context(bot, data)
        data["fsm_storage"] = self.storage
        if context is None or not isinstance(self.events_isolation, SessionIsolation):
            return await super().__call__(handler, event, data)
        if isinstance(event, Update) and event.pre_checkout_query is not None:
            data[UNLOCKED] = True
            async with self.events_isolation.unlocked_session(context.key):
                data.update({"state": context, "raw_state": await context.get_state()})
                return await handler(event, data)
        seen = None
        if isinstance(event, Update):
            seen = (self.events_isolation.key_builder.seen(context.key, event.update_id), self.dedup_seconds)
        async with self.events_isolation.session(context.key, seen=seen) as fresh:
            if not fresh:
                log.info("update.repeated update_id=%s", getattr(event, "update_id", None))
                return None
            data[DEDUPLICATED] = seen is not None
            data.update({"state": context, "raw_state": await context.get_state()})
            return await handler(event, data)


def install_session_lock(dp: Dispatcher, dedup_seconds: int) -> None:
    """Put SessionLock where aiogram puts its FSM middleware: build the dispatcher with
    `disable_fsm=True` and call this before registering any other update middleware."""
    dp.fsm = SessionLock(dp.fsm.storage, dp.fsm.events_isolation, dp.fsm.strategy, dedup_seconds)
    dp.update.outer_middleware(dp.fsm)


class DropRepeatedUpdates(BaseMiddleware):
    """Telegram re-delivers an update when it is unsure it arrived; handle each id once.
    (Updates with a user are checked under their lock by SessionLock; this handles the rest.)"""

    def __init__(self, redis: Redis, ttl_seconds: int) -> None:
        self._redis = redis
        self._ttl = ttl_seconds

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        assert isinstance(event, Update)
        if data.get(DEDUPLICATED):
            return await handler(event, data)
        key = keys.update_seen(data["bot"].id, event.update_id)
        if not await self._redis.set(key, 1, nx=True, ex=self._ttl):
            log.info("update.repeated update_id=%s", event.update_id)
            return None
        try:
            return await handler(event, data)
        except Exception:
            # Not handled after all: a redelivery must be able to try again.
            try:
                await self._redis.delete(key)
            except Exception:  # Redis may be what failed; the mark then expires on its own.
                pass
            raise


class UnitOfWork(BaseMiddleware):
    """Buffer FSM writes for the update; they are stored only when the handler succeeds. An
    order is read from Redis once an update (the handler's check, then its screen)."""

    def __init__(self, storage: UnitOfWorkStorage) -> None:
        self._storage = storage

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        with read_orders_once():
            if self._storage.in_unit():  # the session lock's: stored with the unlock, dropped if this raises
                return await handler(event, data)
            async with self._storage.unit_of_work():
                return await handler(event, data)


_SESSION_DEFAULTS: dict[str, Any] | None = None


def load_session(stored: dict[str, Any]) -> Session:
    """Session.from_data, 3-4x cheaper: pydantic deep-copies a model-valued default (the cart,
    the billing cart, the trial form) for every field the stored data leaves out, and the
    stored data leaves out every default; building them from their plain defaults is cheaper
    than copying. The result is equal to Session.from_data(stored)."""
    global _SESSION_DEFAULTS
    if _SESSION_DEFAULTS is None:
        _SESSION_DEFAULTS = Session().model_dump(mode="json")
    return Session.model_validate({**_SESSION_DEFAULTS, **(stored.get("session") or {})})


class SessionAndLanguage(BaseMiddleware):
    """Give handlers `tr` (texts in the user's language), `session` (the conversation's data)
    and `flow` (both, with the step machinery); the session is stored once, after the handler."""

    def __init__(self, texts: Texts) -> None:
        self._texts = texts

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        user: User | None = data.get("event_from_user")
        data["tr"] = self._texts.for_lang(language_of(user.language_code if user else None))
        state: FSMContext | None = data.get("state")
        if state is None:
            return await handler(event, data)
        storage: UnitOfWorkStorage = state.storage
        stored = await storage.get_data_text(state.key)  # JSON text: compared and stored as text
        session = load_session(json.loads(stored) if stored else {})
        data["session"] = session
        if user is not None:
            data["flow"] = Flow(app=data["app"], session=session, tr=data["tr"], state=state, user_id=user.id)
        result = await handler(event, data)
        if data.get(UNLOCKED):  # not the lock holder: the conversation is read, never written
            return result
        fresh = session.to_text()
        if fresh != stored:
            await storage.set_data_text(state.key, fresh)
        return result


def speed_up_dispatch(dispatcher: Router, *, skip_early: bool = True, pass_over: bool = True) -> None:
    """Make aiogram's handler lookup cheap, without changing what matches. Call it once the
    routers are included.

    1. Synchronous filters run in the event loop. aiogram 3 runs every synchronous callable it
       is given through `asyncio.to_thread`, filters included: a `State` used as a filter
       (`@r.message(Buy.enterprise_name)`), `F.text`, `F.contact`, `router.message.filter(...)`
       predicates. An update is checked against dozens of handlers, so it paid several thread
       hand-offs (the bench measured ~7 an update, a third of its CPU). Filters here are pure
       and instant; one that must do I/O is written `async`, as the handlers are.
    2. A handler that cannot match is skipped before its filters run: when it has a state
       filter (a `State` or `StateFilter`) and the update's state is not one of them, or a
       callback-data filter and the tap's data has another prefix. These are necessary
       conditions of those very filters, so the result is the same; the filters still run in
       full for the handlers that pass.
    3. A router is walked in one plain loop (aiogram's `Router.propagate_event` and
       `TelegramEventObserver.trigger`, the same steps in the same order) when it has no outer
       middleware and no filter of its own for the update's type: a handler ruled out by 2
       costs a comparison, not a coroutine, a partial and a copy of the handler's arguments,
       and a router none of whose handlers can match costs nothing but the walk into its
       sub-routers. An update passes ~40 handlers in ~10 routers on its way.
    """
    for router in dispatcher.chain_tail:
        for observer in router.observers.values():
            # The observer's own filters (`router.message.filter(...)`) sit on its `_handler`.
            root = getattr(observer, "_handler", None)
            for handler in [*observer.handlers, *([root] if root is not None else [])]:
                guard = _guard(handler.filters or ())
                for filter_ in handler.filters or ():
                    if not filter_.awaitable and type(filter_) is FilterObject:
                        filter_.__class__ = _InlineFilter  # same filter, same callback, called inline
                if skip_early and guard is not None and handler is not root:
                    handler.may_match = _may_match(*guard)  # type: ignore[attr-defined]
                    handler.check = _guarded(handler.check, handler.may_match)
        if pass_over:
            router.propagate_event = _passing_over(router)  # type: ignore[method-assign]


_AIOGRAM_PROPAGATE = "_aiogram_propagate_event"


def _passing_over(router: Router) -> Callable[..., Awaitable[Any]]:
    """Router.propagate_event as `_walk`; aiogram's own is kept for routers `_walk` leaves to it."""
    setattr(router, _AIOGRAM_PROPAGATE, router.propagate_event)

    async def propagate_event(update_type: str, event: TelegramObject, **kwargs: Any) -> Any:
        return await _walk(router, update_type, event, kwargs)

    return propagate_event


async def _walk(router: Router, update_type: str, event: TelegramObject, kwargs: dict[str, Any]) -> Any:
    """aiogram's Router.propagate_event, _propagate_event and TelegramEventObserver.trigger, step
    for step, without their work that cannot change the result: a handler `may_match` rules
    out is not checked, a router is entered without copying the handlers' arguments (they are
    copied once, for the handlers that are checked), and its sub-routers are walked in the
    same loop. Checked at each call, so handlers and routers added later are honoured (a
    handler without `may_match` is always checked). A router with outer middlewares for the
    update's type is left to aiogram."""
    observer = router.observers.get(update_type)
    if observer is None or len(observer.outer_middleware):
        aiogram_way = getattr(router, _AIOGRAM_PROPAGATE, router.propagate_event)
        return await aiogram_way(update_type=update_type, event=event, **kwargs)
    handlers = _candidates(observer, kwargs.get("raw_state"), _tap_data(event))
    if not handlers and not router.sub_routers:
        return UNHANDLED  # whatever its own filters say
    if observer._handler.filters:  # the router's own filters first; what they add goes on down
        passed, kwargs = await observer._handler.check(event, **{**kwargs, "event_router": router})
        if not passed:
            return UNHANDLED
    # The first handler whose filters pass is called (trigger).
    local: dict[str, Any] | None = None
    for handler in handlers:
        if local is None:
            local = {**kwargs, "event_router": router}
        local["handler"] = handler
        result, found = await handler.check(event, **local)
        if not result:
            continue
        local.update(found)
        try:
            wrapped = observer.outer_middleware.wrap_middlewares(observer._resolve_middlewares(), handler.call)
            response = await wrapped(event, local)
        except SkipHandler:
            continue
        if response is REJECTED:
            return UNHANDLED
        if response is not UNHANDLED:
            return response
        break
    # Then the sub-routers, in order, until one handles it.
    for sub in router.sub_routers:
        response = await _walk(sub, update_type, event, kwargs)
        if response is not UNHANDLED:
            return response
    return UNHANDLED


def _candidates(observer: Any, raw_state: str | None, data: Any) -> list[Any]:
    """The observer's handlers that `may_match` does not rule out, in order. What rules a handler
    out depends on the state and on the tap's data only up to its first ':' (the callback-data
    prefix), so the list is kept per (state, prefix) — and made again when handlers are added."""
    handlers = observer.handlers
    if isinstance(data, str):
        prefix, colon, _ = data.partition(":")
        key: tuple = (raw_state, prefix, bool(colon))
    else:
        key = (raw_state, data if data is None else _NOT_A_TAP)
    memo = observer.__dict__.setdefault("_candidates_memo", {})
    found = memo.get(key)
    if found is None or found[0] != len(handlers):
        if len(memo) > CANDIDATE_LISTS_KEPT:
            memo.clear()
        kept = [h for h in handlers if getattr(h, "may_match", None) is None or h.may_match(raw_state, data)]
        found = memo[key] = (len(handlers), kept)
    return found[1]


CANDIDATE_LISTS_KEPT = 1024


class _InlineFilter(FilterObject):
    """A synchronous filter, called in the event loop (aiogram's FilterObject would hand it to a
    thread). Its `callback` is untouched, so tools that read filters (esign_devkit.diagram) see it."""

    async def call(self, *args: Any, **kwargs: Any) -> Any:
        return self.callback(*args, **self._prepare_kwargs(kwargs))


_ANY = object()


def _allowed_states(filter_: Any) -> frozenset[str | None] | object | None:
    """The raw states a state filter lets through (_ANY: all), or None if it is no state filter."""
    def names(state: Any) -> set[str | None] | object:
        if state is None or isinstance(state, str):
            return _ANY if state == "*" else {state}
        if isinstance(state, State):
            return _ANY if state.state == "*" else {state.state}
        if isinstance(state, StatesGroup) or (isclass(state) and issubclass(state, StatesGroup)):
            return set(type(state).__all_states_names__ if isinstance(state, StatesGroup)
                       else state.__all_states_names__)
        return _ANY  # something else: never skip on it

    if isinstance(filter_, State):
        found = names(filter_)
    elif isinstance(filter_, StateFilter):
        found = set()
        for state in filter_.states:
            allowed = names(state)
            if allowed is _ANY:
                return _ANY
            found |= allowed  # type: ignore[operator]
    else:
        return None
    return found if found is _ANY else frozenset(found)  # type: ignore[arg-type]


def _guard(filters: Any) -> tuple[frozenset[str | None] | None, str | None] | None:
    """(the states a handler's state filter allows, the prefix its callback-data filter wants)."""
    states: frozenset[str | None] | None = None
    prefix: str | None = None
    for filter_ in filters:
        callback = getattr(filter_, "magic", None) or filter_.callback
        allowed = _allowed_states(callback)
        if states is None and isinstance(allowed, frozenset):
            states = allowed
        # Only ':'-separated data (all of ours): `_candidates` keys its lists on the part before ':'.
        if prefix is None and isinstance(callback, CallbackQueryFilter) and callback.callback_data.__separator__ == ":":
            prefix = callback.callback_data.__prefix__
    return (states, prefix) if states is not None or prefix is not None else None


_NOT_A_TAP = object()


def _tap_data(event: Any) -> Any:
    return event.data if isinstance(event, CallbackQuery) else _NOT_A_TAP


def _may_match(states: frozenset[str | None] | None, prefix: str | None) -> Callable[[str | None, Any], bool]:
    """Necessary conditions of a handler's state and callback-data filters, as a plain function
    of the update's state and its tap's data (`_tap_data`)."""
    head = None if prefix is None else prefix + ":"

    def may_match(raw_state: str | None, data: Any) -> bool:
        if states is not None and raw_state not in states:
            return False
        return head is None or data is _NOT_A_TAP or bool(data and (data.startswith(head) or data == prefix))

    return may_match


def _guarded(check: Callable[..., Awaitable[Any]], may_match: Callable[[str | None, Any], bool]
             ) -> Callable[..., Awaitable[Any]]:
    async def guarded(event: Any, **kwargs: Any) -> Any:
        if not may_match(kwargs.get("raw_state"), _tap_data(event)):
            return False, kwargs
        return await check(event, **kwargs)

    return guarded
