"""The flow-testing kit's pytest plugin. Opt in from a conftest.py:

    pytest_plugins = ["esign_devkit.testing.pytest_plugin"]

Fixtures, all named `esign_*` so they never shadow a project's own:

- `esign_redis`: a Redis client on a database the run owns, emptied before and after each
  test. It is the URL given explicitly — `--esign-redis URL` or `$ESIGN_TEST_REDIS_URL` — and
  nothing else is ever emptied; without one, a private redis-server started for the session
  in a temporary folder (when the `redis-server` binary is there), else an in-process
  fakeredis. Under pytest-xdist, worker N takes the given database number + N.
- `esign_redis_url`: that URL (None for the in-process store), for subprocesses.
- `esign_clock`: a FixedClock.
- `esign_harness`: the production dispatcher on both, with the fake Telegram (BotHarness).
- `esign_scenarios`: `await esign_scenarios(path)` runs a file's YAML scenarios on that database,
  emptied before each; a failure shows the report.

docs/testing.md is the tutorial.
"""
from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.runtime.redis_client import redis_from_url
from esign_devkit.testing.databases import URL_VARIABLE, for_this_worker, given_redis_url
from esign_devkit.testing.harness import BotHarness
from esign_devkit.testing.scenario import format_result, load_file, run_scenario
from services.clock import FixedClock


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--esign-redis", default=None, metavar="URL",
                     help=f"Redis database the esign_* fixtures own and empty (or ${URL_VARIABLE})")


def configured_redis_url(config: pytest.Config | None = None) -> str | None:
    """The Redis URL given explicitly for the tests (option or environment), per worker."""
    url = config.getoption("--esign-redis") if config is not None else None
    return for_this_worker(url) if url else given_redis_url()


@pytest.fixture(scope="session")
def esign_redis_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str | None]:
    url = configured_redis_url(request.config)
    if url is not None:
        yield url
        return
    binary = shutil.which("redis-server")
    if binary is None:
        yield None  # the in-process store
        return
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    folder = tmp_path_factory.mktemp("esign-redis")
    server = subprocess.Popen([binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no",
                               "--dir", str(folder)], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        _wait_for_port(port)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        server.terminate()
        server.wait(timeout=10)


def _wait_for_port(port: int, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2) as sock:
                sock.sendall(b"PING\r\n")
                if sock.recv(16).startswith(b"+PONG"):
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"the private redis-server on port {port} did not start within {seconds:.0f} s")


@pytest.fixture
async def esign_redis(esign_redis_url: str | None) -> AsyncIterator[Any]:
    if esign_redis_url is None:
        from fakeredis import FakeAsyncRedis

        client: Any = FakeAsyncRedis(decode_responses=True)
    else:
        client = redis_from_url(esign_redis_url)
    await client.flushdb()  # the run's own database only; never FLUSHALL
    yield client
    await client.flushdb()
    await client.aclose()


@pytest.fixture
def esign_clock() -> FixedClock:
    return FixedClock()


@pytest.fixture
async def esign_harness(esign_redis: Any, esign_clock: FixedClock) -> AsyncIterator[BotHarness]:
    harness = BotHarness(esign_redis, clock=esign_clock)
    yield harness
    await harness.close()


@pytest.fixture
def esign_scenarios(esign_redis: Any) -> Callable[[str | Path], Awaitable[None]]:
    async def run(path: str | Path) -> None:
        for scenario in load_file(path):
            await esign_redis.flushdb()
            result = await run_scenario(scenario, esign_redis)
            if not result.passed:
                pytest.fail("\n" + format_result(result), pytrace=False)

    return run
