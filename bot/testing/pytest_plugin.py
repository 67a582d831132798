"""pytest plugin (registered by the package's `pytest11` entry point): fixtures for flow tests.

- `redis`: a real Redis on the tests' own database index ($TEST_REDIS_URL, default db 13),
  emptied before and after each test;
- `clock`: a FixedClock;
- `bot_harness`: the production dispatcher on both, with the fake Telegram (bot.testing.harness);
- `run_scenarios`: `await run_scenarios(path)` runs the YAML scenarios of a file
  (bot.testing.scenario) on that database, emptied before each; a failure shows the report.

docs/testing.md is the tutorial.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from bot.redis_client import redis_from_url
from bot.testing.harness import BotHarness
from bot.testing.scenario import format_result, load_file, run_scenario
from services.clock import FixedClock

DEFAULT_TEST_REDIS_URL = "redis://127.0.0.1:6379/13"


def redis_url_for_tests() -> str:
    return os.environ.get("TEST_REDIS_URL", DEFAULT_TEST_REDIS_URL)


@pytest.fixture
async def redis():
    client = redis_from_url(redis_url_for_tests())
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


@pytest.fixture
def run_scenarios(redis):
    async def run(path: str | Path) -> None:
        for scenario in load_file(path):
            await redis.flushdb()
            result = await run_scenario(scenario, redis)
            if not result.passed:
                pytest.fail("\n" + format_result(result), pytrace=False)

    return run
