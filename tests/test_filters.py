"""Every filter the bot registers is checked in the event loop: aiogram runs a synchronous
filter (a bare State, F.text, a plain function) in a worker thread for every update it is
asked about, so the bot's filters are async (bot/filters.py, StateFilter, CallbackData)."""
from __future__ import annotations

import fakeredis
from aiogram import Bot

from bot.app import build_context, build_dispatcher
from config.settings import Settings


def test_no_filter_of_the_bot_runs_in_a_thread():
    dp = build_dispatcher(build_context(Settings(_env_file=None), fakeredis.aioredis.FakeRedis()), Bot("42:FILTERS"))
    synchronous = []
    for router in dp.chain_tail:
        for name, observer in router.observers.items():
            handlers = [("router filter", observer._handler)] if observer._handler.filters else []
            handlers += [(handler.callback.__qualname__, handler) for handler in observer.handlers]
            for where, handler in handlers:
                synchronous += [f"{router.name}.{name} {where}: {f.callback!r}"
                                for f in handler.filters or () if not f.awaitable]
    assert synchronous == []
