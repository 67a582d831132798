"""The background task: one per process, running services.scheduler ticks (expiry of editions,
trials and unpaid orders; reminders; staff told of their quotes) and sending the reminders
through the Bot.

    task = start_background(app, bot)      # bot/runtime/runner.py, devkit/esign_devkit/playground.py
    ...
    await stop_background(task)

Several processes may run it at once: the scheduler's Redis lease lets one work per tick, and
every reminder is claimed once. Tests run one tick at the harness clock with
`await bot_harness.run_jobs()`.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError

from bot.context import AppContext
from bot.flows.support.desk import Desk
from bot.flows.support.quotes import check_quotes
from bot.runtime.metrics import SCHEDULER_RUNS, SCHEDULER_SECONDS
from bot.screens import billing as screens
from services.scheduler import Reminder, Scheduler

log = logging.getLogger(__name__)


class BotNotifier:
    """Sends a reminder (text and its 版本续费 button) to a chat, in the chat's language."""

    def __init__(self, bot: Bot, app: AppContext) -> None:
        self._bot = bot
        self._app = app

    async def remind(self, chat_id: int, lang: str, reminder: Reminder) -> bool:
        screen = screens.reminder(self._app.texts.for_lang(lang), reminder)
        try:
            await self._bot.send_message(chat_id, screen.text, reply_markup=screen.markup)
        except TelegramAPIError as exc:  # blocked, chat gone: the others are still told
            log.info("reminder.not_sent chat=%s kind=%s error=%s", chat_id, reminder.kind, type(exc).__name__)
            return False
        log.info("reminder.sent chat=%s kind=%s enterprise=%s", chat_id, reminder.kind, reminder.enterprise_id)
        return True


async def close_expired_payments(app: AppContext, bot: Bot | None) -> None:
    """Payments of web orders that expired unpaid are closed at their providers; one found paid
    meanwhile is applied (kept for a refund), and staff and the buyer hear of it."""
    applied = await app.web_payments.close_expired()
    if bot is None:
        return
    from bot.alerts import alert_refund_pending
    from services.checkout import charge_id

    for found in applied:
        if found.outcome.status == "refund_pending":
            await alert_refund_pending(bot, app, charge_id=charge_id(found.gateway, found.notice.payment_id),
                                       order_id=found.notice.order_id, amount_fen=found.notice.amount_fen,
                                       currency=found.notice.currency, reason=found.outcome.reason or "expired",
                                       provider=found.gateway)


def build_scheduler(app: AppContext, bot: Bot | None, desk: Desk | None = None) -> Scheduler:
    """The scheduler; each tick also closes at their providers the payments of web orders that
    expired unpaid, and, with the help desk, tells staff of their quotes' payments (a web
    payment is told at once too, this is the safety net) and of those that lapsed."""
    jobs: list[Callable[[], Awaitable[object]]] = [lambda: close_expired_payments(app, bot)]
    if desk is not None and app.settings.staff_chat_id is not None:
        jobs.append(lambda: check_quotes(desk))
    return Scheduler(
        app.redis, app.clock, app.catalog, app.enterprises, app.orders, app.trials,
        BotNotifier(bot, app) if bot is not None else None,
        interval_seconds=app.settings.scheduler_interval_seconds or 60,
        lease_seconds=max(60, app.settings.scheduler_interval_seconds * 5),
        jobs=jobs,
    )


async def run_forever(scheduler: Scheduler, interval: float) -> None:
    """Tick every `interval` seconds (with a little jitter, so instances do not collide) until
    cancelled; a failing tick is logged and the next one tries again."""
    await asyncio.sleep(random.uniform(0, min(interval, 5)))
    while True:
        await tick_once(scheduler)
        await asyncio.sleep(interval * random.uniform(0.9, 1.1))


async def tick_once(scheduler: Scheduler) -> None:
    """One tick, counted (esign_scheduler_runs_total, esign_scheduler_tick_seconds); a failure
    is logged, not raised."""
    started = time.perf_counter()
    try:
        report = await scheduler.tick()
    except asyncio.CancelledError:
        raise
    except Exception:
        SCHEDULER_RUNS.labels("failed").inc()
        log.exception("scheduler.tick_failed")
        return
    SCHEDULER_RUNS.labels("ran" if report.ran else "skipped").inc()
    if report.ran:
        SCHEDULER_SECONDS.observe(time.perf_counter() - started)


def start_background(app: AppContext, bot: Bot, desk: Desk | None = None) -> asyncio.Task[None] | None:
    """Start this process's background task (None when SCHEDULER_INTERVAL_SECONDS is 0)."""
    interval = app.settings.scheduler_interval_seconds
    if interval <= 0:
        return None
    return asyncio.create_task(run_forever(build_scheduler(app, bot, desk), interval), name="esign-scheduler")


async def stop_background(task: asyncio.Task[None] | None) -> None:
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
