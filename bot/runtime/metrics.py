"""Prometheus metrics, served at /metrics (bot/web/app.py: behind a bearer
token, or on an internal listener of its own; docs/security.md).

Counted where the bot sees them: updates by type and outcome, handler latency, orders and
payments by what happened, support tickets by the state they reach, SMS codes, Redis errors,
Bot API 429s, scheduler ticks, waits for a user's conversation lock, web request latency; and
the standard process, platform and garbage-collector collectors. Every labelled series the
code can produce is created at zero at import, so rates and alerts work before the first event.
Each process exports its own; Prometheus sums across instances. docs/grafana-dashboard.json
reads them.
"""
from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any, get_args

from aiogram import BaseMiddleware
from aiogram.types import TelegramObject, Update
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

from bot.runtime.updates import update_kind
from services.codes import SendStatus
from services.orders import Channel, OrderStatus, PaymentOutcome
from services.support import TicketStatus

REGISTRY = CollectorRegistry()
# The standard collectors, on our registry (the default one holds them already): memory, CPU,
# open files, start time (process_*), the Python version (python_info), collections (python_gc_*).
ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)
GCCollector(registry=REGISTRY)

UPDATES = Counter("esign_updates_total", "Updates handled, by type and outcome", ["type", "outcome"], registry=REGISTRY)
LATENCY = Histogram("esign_update_seconds", "Time to handle one update", ["type"], registry=REGISTRY,
                    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
ORDERS = Counter("esign_orders_total", "Order transitions, by the state reached", ["state", "channel"], registry=REGISTRY)
PAYMENTS = Counter("esign_payments_total", "Payment notices, by outcome", ["provider", "outcome"], registry=REGISTRY)
TICKETS = Counter("esign_tickets_total", "Support ticket transitions, by the state reached", ["state"],
                  registry=REGISTRY)
CODES = Counter("esign_sms_codes_total", "SMS code requests, by outcome", ["outcome"], registry=REGISTRY)
REDIS_ERRORS = Counter("esign_redis_errors_total", "Updates that failed because Redis did not answer", registry=REGISTRY)
TELEGRAM_429 = Counter("esign_telegram_retry_after_total", "Bot API calls answered 429 Too Many Requests, by method",
                       ["method"], registry=REGISTRY)
TELEGRAM_429_SECONDS = Counter("esign_telegram_retry_after_seconds_total",
                               "Seconds waited out because the Bot API said retry_after", registry=REGISTRY)
SCHEDULER_RUNS = Counter("esign_scheduler_runs_total",
                         "Scheduler ticks of this process: ran (it did the work), skipped (another instance did), failed",
                         ["outcome"], registry=REGISTRY)
SCHEDULER_SECONDS = Histogram("esign_scheduler_tick_seconds", "Time one scheduler tick took", registry=REGISTRY,
                              buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120))
LOCK_WAIT = Histogram("esign_conversation_lock_wait_seconds",
                      "Time an update waited for its user's conversation lock (0: free at once)", registry=REGISTRY,
                      buckets=(0.0005, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
WEB_LATENCY = Histogram("esign_web_request_seconds", "Time to answer one web request, by route", ["route"],
                        registry=REGISTRY, buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
WEB_REQUESTS = Counter("esign_web_requests_total", "Web requests, by route and status class (2xx, 4xx...)",
                       ["route", "status"], registry=REGISTRY)

# --- every series the code can produce, at zero from the start ----------------------------------

# The update types the bot subscribes to (dp.resolve_used_update_types), and "unknown".
UPDATE_KINDS = ("message", "edited_message", "callback_query", "pre_checkout_query", "my_chat_member", "unknown")
UPDATE_OUTCOMES = ("ok", "error")
PAYMENT_PROVIDERS = ("telegram",)
# Bot API methods the bot calls (outbound.py paces the sends among them); a 429 on another
# method adds its series then.
BOT_METHODS = ("sendMessage", "sendInvoice", "copyMessage", "forwardMessage", "sendPhoto", "sendDocument",
               "editMessageText", "editMessageReplyMarkup", "answerCallbackQuery", "answerPreCheckoutQuery",
               "createForumTopic", "editForumTopic", "deleteMessage", "leaveChat")
SCHEDULER_OUTCOMES = ("ran", "skipped", "failed")
CODE_OUTCOMES = (*get_args(SendStatus), "failed")
STATUS_CLASSES = ("2xx", "3xx", "4xx", "5xx")


def _precreate() -> None:
    for kind in UPDATE_KINDS:
        LATENCY.labels(kind)
        for outcome in UPDATE_OUTCOMES:
            UPDATES.labels(kind, outcome)
    for state in OrderStatus:
        for channel in Channel:
            ORDERS.labels(state.value, channel.value)
    for provider in PAYMENT_PROVIDERS:
        for status in get_args(PaymentOutcome.model_fields["status"].annotation):
            PAYMENTS.labels(provider, status)
    for ticket_state in TicketStatus:
        TICKETS.labels(ticket_state.value)
    for code_outcome in CODE_OUTCOMES:
        CODES.labels(code_outcome)
    for method in BOT_METHODS:
        TELEGRAM_429.labels(method)
    for run in SCHEDULER_OUTCOMES:
        SCHEDULER_RUNS.labels(run)


def precreate_routes(routes: list[str]) -> None:
    """The web app's routes (bot/web/app.py calls it once built)."""
    for route in routes:
        WEB_LATENCY.labels(route)
        for status in STATUS_CLASSES:
            WEB_REQUESTS.labels(route, status)


_precreate()


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
