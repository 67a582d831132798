"""pytest plugin (registered by the package's `pytest11` entry point): fixtures for flow tests.

- `redis`: a real Redis on the tests' own database index ($TEST_REDIS_URL, default db 13),
  emptied before and after each test;
- `clock`: a FixedClock;
- `bot_harness`: the production dispatcher on both, with the fake Telegram (bot.testing.harness).
"""
from __future__ import annotations

import os

import pytest
import redis.asyncio as aioredis

from bot.testing.harness import BotHarness
from services.clock import FixedClock

DEFAULT_TEST_REDIS_URL = "redis://127.0.0.1:6379/13"


def redis_url_for_tests() -> str:
    return os.environ.get("TEST_REDIS_URL", DEFAULT_TEST_REDIS_URL)


@pytest.fixture
async def redis():
    client = aioredis.Redis.from_url(redis_url_for_tests(), decode_responses=True)
    await client.flushdb()  # the tests' own index only; never FLUSHALL
    yield client
    await client.flushdb()
    await client.aclose()


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock()


@pytest.fixture
async def bot_harness(redis, clock):
    harness = BotHarness(redis, clock=clock)
    yield harness
    await harness.close()
