"""Prometheus metrics (issue 8), served at /metrics by the web app.

Counted where the bot sees them: updates by type and outcome, handler latency, orders and
payments by what happened, support tickets by the state they reach, SMS codes, Redis errors.
Each process exports its own; Prometheus sums across instances.
"""
from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import TelegramObject, Update
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest

from bot.runtime.updates import update_kind

REGISTRY = CollectorRegistry()

UPDATES = Counter("esign_updates_total", "Updates handled, by type and outcome", ["type", "outcome"], registry=REGISTRY)
LATENCY = Histogram("esign_update_seconds", "Time to handle one update", ["type"], registry=REGISTRY,
                    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
ORDERS = Counter("esign_orders_total", "Order transitions, by the state reached", ["state", "channel"], registry=REGISTRY)
PAYMENTS = Counter("esign_payments_total", "Payment notices, by outcome", ["provider", "outcome"], registry=REGISTRY)
TICKETS = Counter("esign_tickets_total", "Support ticket transitions, by the state reached", ["state"],
                  registry=REGISTRY)
CODES = Counter("esign_sms_codes_total", "SMS code requests, by outcome", ["outcome"], registry=REGISTRY)
REDIS_ERRORS = Counter("esign_redis_errors_total", "Updates that failed because Redis did not answer", registry=REGISTRY)


class UpdateMetrics(BaseMiddleware):
    """Outermost: counts every update with its outcome (handled, dropped as a repeat, failed).
    The labelled series are looked up once per type and outcome, not at every update."""

    def __init__(self) -> None:
        self._series: dict[tuple[str, str], tuple[Any, Any]] = {}

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        kind = update_kind(event) if isinstance(event, Update) else type(event).__name__.lower()
        started = time.perf_counter()
        outcome = "error"
        try:
            result = await handler(event, data)
            outcome = "ok"
            return result
        finally:
            series = self._series.get((kind, outcome))
            if series is None:
                series = self._series[(kind, outcome)] = (UPDATES.labels(kind, outcome), LATENCY.labels(kind))
            series[0].inc()
            series[1].observe(time.perf_counter() - started)


def exposition() -> tuple[bytes, str]:
    """The metrics in Prometheus' text format, and its content type."""
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
