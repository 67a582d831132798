"""/metrics only with the bearer token (or only on the internal listener),
with the standard process collectors, every labelled series there from the start, and the
series the issue asked for (429s, scheduler runs, lock waits, web latency)."""
from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

from aiohttp.test_utils import TestClient, TestServer
from esign_devkit.testing.harness import BotHarness

from bot.runtime.metrics import REGISTRY
from bot.web.app import build_metrics_app, build_web_app
from tests.web.conftest import web_settings

TOKEN = "metrics-test-token-0123456789"
ROOT = Path(__file__).resolve().parents[2]


async def scrape(client: TestClient, headers: dict[str, str] | None = None) -> tuple[int, str]:
    async with client.get("/metrics", headers=headers or {}) as resp:
        return resp.status, await resp.text()


async def test_metrics_need_the_bearer_token_on_the_web_app(redis, clock):
    harness = BotHarness(redis, clock=clock, settings=web_settings("https://shop.example.com", metrics_token=TOKEN))
    async with TestClient(TestServer(build_web_app(harness.app, harness.bot, harness.dp))) as client:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"},
                        {"Authorization": TOKEN}, {"Authorization": f"Bearer {TOKEN}x"}):
            status, body = await scrape(client, headers)
            assert status == 401 and "esign_" not in body, headers
        status, body = await scrape(client, {"Authorization": f"Bearer {TOKEN}"})
        assert status == 200 and "esign_updates_total" in body
    await harness.close()


async def test_without_a_token_the_web_app_does_not_serve_metrics(redis, clock):
    harness = BotHarness(redis, clock=clock, settings=web_settings("https://shop.example.com"))
    async with TestClient(TestServer(build_web_app(harness.app, harness.bot, harness.dp))) as client:
        status, body = await scrape(client)
        assert status == 404 and "esign_" not in body
    await harness.close()


async def test_with_metrics_port_they_are_only_on_the_internal_listener(redis, clock):
    settings = web_settings("https://shop.example.com", metrics_port=9464)
    harness = BotHarness(redis, clock=clock, settings=settings)
    async with TestClient(TestServer(build_web_app(harness.app, harness.bot, harness.dp))) as client:
        assert (await scrape(client))[0] == 404
    async with TestClient(TestServer(build_metrics_app(settings))) as internal:
        status, body = await scrape(internal)
        assert status == 200 and "process_resident_memory_bytes" in body
    with_token = web_settings("https://shop.example.com", metrics_port=9464, metrics_token=TOKEN)
    async with TestClient(TestServer(build_metrics_app(with_token))) as internal:
        assert (await scrape(internal))[0] == 401
        assert (await scrape(internal, {"Authorization": f"Bearer {TOKEN}"}))[0] == 200
    await harness.close()


def value(name: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(name, labels)


def test_standard_collectors_and_series_at_zero_before_any_event():
    assert (value("process_resident_memory_bytes") or 0) > 0
    assert (value("process_start_time_seconds") or 0) > 0
    assert value("process_cpu_seconds_total") is not None
    assert value("python_gc_collections_total", generation="0") is not None
    assert value("python_info", implementation="CPython", major="3", minor=str(__import__("sys").version_info.minor),
                 patchlevel=str(__import__("sys").version_info.micro),
                 version=__import__("platform").python_version()) == 1
    for name, labels in [
        ("esign_updates_total", {"type": "message", "outcome": "error"}),
        ("esign_orders_total", {"state": "paid", "channel": "web"}),
        ("esign_payments_total", {"provider": "telegram", "outcome": "refund_pending"}),
        ("esign_tickets_total", {"state": "resolved"}),
        ("esign_sms_codes_total", {"outcome": "prove_ownership"}),
        ("esign_telegram_retry_after_total", {"method": "sendMessage"}),
        ("esign_scheduler_runs_total", {"outcome": "failed"}),
        ("esign_redis_errors_total", {}),
        ("esign_telegram_retry_after_seconds_total", {}),
        ("esign_conversation_lock_wait_seconds_count", {}),
    ]:
        assert value(name, **labels) is not None, (name, labels)


async def test_429s_scheduler_runs_lock_waits_and_web_latency_are_counted(esign_harness):
    from aiogram.exceptions import TelegramRetryAfter
    from aiogram.methods import SendMessage

    from bot.runtime.jobs import build_scheduler, tick_once
    from bot.runtime.outbound import OutboundLimits

    # A 429 on sendMessage, waited out once.
    before = value("esign_telegram_retry_after_total", method="sendMessage") or 0
    calls = []

    async def make_request(bot, method):
        calls.append(method)
        if len(calls) == 1:
            raise TelegramRetryAfter(method=method, message="Too Many Requests", retry_after=3)
        return "ok"

    async def no_sleep(_: float) -> None:
        return None

    limits = OutboundLimits(sleep=no_sleep)
    assert await limits(make_request, esign_harness.bot, SendMessage(chat_id=1, text="hi")) == "ok"
    assert value("esign_telegram_retry_after_total", method="sendMessage") == before + 1

    # Scheduler ticks: this instance ran one, then skipped the same slot (another had it).
    ran, skipped = value("esign_scheduler_runs_total", outcome="ran"), value("esign_scheduler_runs_total",
                                                                              outcome="skipped")
    scheduler = build_scheduler(esign_harness.app, None)
    await tick_once(scheduler)
    await tick_once(scheduler)
    assert value("esign_scheduler_runs_total", outcome="ran") == ran + 1
    assert value("esign_scheduler_runs_total", outcome="skipped") == skipped + 1

    # Lock waits: two updates of one user at once, the second waits for the first.
    waits = value("esign_conversation_lock_wait_seconds_count") or 0
    buyer = esign_harness.user()
    await asyncio.gather(buyer.send("/start"), buyer.send("/start"))
    assert value("esign_conversation_lock_wait_seconds_count") == waits + 2

    # Web latency by route pattern (never the raw path: a bounded label).
    app = build_web_app(esign_harness.app, esign_harness.bot, esign_harness.dp)
    async with TestClient(TestServer(app)) as client:
        for path in ("/healthz", "/checkout/not-a-token", "/no/such/page"):
            async with client.get(path):
                pass
    assert (value("esign_web_request_seconds_count", route="/healthz") or 0) >= 1
    assert (value("esign_web_requests_total", route="/checkout/{token}", status="4xx") or 0) >= 1
    assert (value("esign_web_requests_total", route="unmatched", status="4xx") or 0) >= 1
    assert value("esign_web_requests_total", route="/no/such/page", status="4xx") is None


def test_the_grafana_dashboard_reads_series_that_exist():
    dashboard = json.loads((ROOT / "docs" / "grafana-dashboard.json").read_text(encoding="utf-8"))
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]
    assert len(exprs) >= 12
    exported = {metric.name for metric in REGISTRY.collect()}
    samples = {sample.name for metric in REGISTRY.collect() for sample in metric.samples}
    for expr in exprs:
        for name in re.findall(r"\b((?:esign|process|python)_[a-z_]+)\b", expr):
            assert name in samples or name in exported, (name, expr)
