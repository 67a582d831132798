"""`python -m bot flowtest PATH...`: run scenario files (YAML conversations) and report.

Each scenario runs on the production dispatcher with the fake Telegram, a fixed clock and the
console SMS (esign_devkit.testing.scenario), on a Redis database of its own that is emptied before each
scenario and after the last one (FLUSHDB on that index only, never FLUSHALL):

- `--redis URL` when given, else $ESIGN_TEST_REDIS_URL, else database 12 of the server in $REDIS_URL
  (default 127.0.0.1:6379);
- a database holding keys that flowtest did not write is refused, not emptied;
- when no Redis answers, an in-process store (fakeredis), as the playground does.

Exit status: 0 all passed, 1 a scenario failed or a file could not be read, 2 bad usage.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import logging
import os
import sys
from pathlib import Path
from typing import TextIO
from urllib.parse import urlsplit

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from bot.runtime.redis_client import redis_from_url
from esign_devkit.testing.scenario import (
    Scenario,
    ScenarioError,
    ScenarioResult,
    format_result,
    format_summary,
    junit_xml,
    load_file,
    run_scenario,
)

FLOWTEST_DB = 12
MARKER = "flowtest:owner"  # the key that says the database is flowtest's to empty


class UsageError(Exception):
    """Exit 2 with this message."""


def default_redis_url() -> str:
    if url := os.environ.get("ESIGN_TEST_REDIS_URL"):
        return url
    base = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
    return urlsplit(base)._replace(path=f"/{FLOWTEST_DB}", query="").geturl()


def collect(paths: list[str]) -> list[Path]:
    """The scenario files named, directories searched for *.yaml and *.yml (sorted)."""
    files: list[Path] = []
    for name in paths:
        path = Path(name)
        if path.is_dir():
            files += sorted(p for p in path.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())
        elif path.is_file():
            files.append(path)
        else:
            raise UsageError(f"no such file or directory: {name}")
    if not files:
        raise UsageError(f"no scenario files (*.yaml) in {' '.join(paths)}")
    return files


async def open_store(url: str) -> tuple[aioredis.Redis, str]:
    """The Redis at `url` when it answers (and is ours to empty); otherwise an in-process one."""
    client = redis_from_url(url, socket_connect_timeout=1)
    try:
        await client.ping()
    except (RedisError, OSError):
        await client.aclose()
        import fakeredis

        return fakeredis.aioredis.FakeRedis(decode_responses=True), f"in-process store (no Redis answers at {url})"
    keys = await client.dbsize()
    if keys and not await client.exists(MARKER):
        await client.aclose()
        raise UsageError(
            f"the Redis database {url} holds {keys} keys that flowtest did not write; it will not "
            f"empty it. Choose an unused database with --redis redis://HOST:PORT/N"
        )
    return client, f"Redis {url} (emptied before each scenario)"


async def clean(redis: aioredis.Redis) -> None:
    await redis.flushdb()  # this database index only
    await redis.set(MARKER, "python -m bot flowtest")


async def run_all(scenarios: list[Scenario], url: str, out: TextIO, *, quiet: bool) -> list[ScenarioResult]:
    redis, description = await open_store(url)
    print(f"Store: {description}\n", file=out, flush=True)
    results = []
    try:
        for scenario in scenarios:
            await clean(redis)
            with contextlib.redirect_stdout(io.StringIO()):  # the console SMS prints its messages
                result = await run_scenario(scenario, redis)
            results.append(result)
            print(format_result(result, steps=not quiet) + "\n", file=out, flush=True)
    finally:
        await redis.flushdb()
        await redis.aclose()
    return results


def main(argv: list[str], out: TextIO | None = None) -> int:
    out = out or sys.stdout
    parser = argparse.ArgumentParser(prog="python -m bot flowtest", description=__doc__.splitlines()[0],
                                     epilog="docs/testing.md explains the scenario files.")
    parser.add_argument("paths", nargs="+", metavar="PATH", help="scenario files or directories")
    parser.add_argument("--junit", metavar="FILE", help="also write a JUnit XML report (for CI)")
    parser.add_argument("--redis", metavar="URL", default=None,
                        help="the Redis database to use and empty "
                             f"(default: $ESIGN_TEST_REDIS_URL, else db {FLOWTEST_DB} of $REDIS_URL's server)")
    parser.add_argument("-q", "--quiet", action="store_true", help="list the steps of failing scenarios only")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    try:
        files = collect(args.paths)
        scenarios: list[Scenario] = []
        broken: list[str] = []
        for path in files:
            try:
                scenarios += load_file(path)
            except ScenarioError as exc:
                broken.append(str(exc))
                print(f"ERROR {exc}\n", file=out)
        url = args.redis or default_redis_url()
        results = asyncio.run(run_all(scenarios, url, out, quiet=args.quiet)) if scenarios else []
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(format_summary(results, broken), file=out)
    if args.junit:
        Path(args.junit).write_bytes(junit_xml(results, broken))
        print(f"JUnit XML: {args.junit}", file=out)
    return 0 if not broken and all(r.passed for r in results) else 1
