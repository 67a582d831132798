"""Time-driven work: one tick does everything that is due at the clock's `now`.

- an edition past its expiry returns to 体验版 (the record is written; screens already read
  `Enterprise.paid_edition`, so nothing depends on the tick being punctual);
- a trial past its end is closed: the enterprise is back on what it had (R14);
- unpaid orders past their lifetime expire (docs/rules.md, Orders);
- reminders before an edition expires (`edition_reminder_days`: 30, 7, 1) and before a trial
  ends (`trial_reminder_days`), and a word when either has ended, to the chats of the
  enterprise's super and billing admins, each with a 版本续费 button (bot/runtime/jobs.py renders it).

Several instances may run, each ticking every `interval_seconds`: a tick first claims its slot
(the clock's time ÷ interval, SET NX) so one instance works per tick and the others skip it,
then takes a lease (SET NX PX with a random token, released by compare-and-delete) so a slow
tick never overlaps the next one. Each piece of work is idempotent besides — transitions are atomic and check the
current state, and every reminder is claimed once per enterprise, term end and threshold
(SET NX) before it is sent — so even two ticks racing past an expired lease do nothing twice.
"""
from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Protocol

from redis.asyncio import Redis

from services import keys
from services.billing import days_left
from services.catalog import Catalog
from services.clock import Clock
from services.enterprises import FREE_EDITION, Enterprise, EnterpriseNotFound, RedisEnterpriseDirectory
from services.orders import OrderService
from services.trials import TrialService

log = logging.getLogger(__name__)

ReminderKind = Literal["edition_expiring", "edition_expired", "trial_ending", "trial_ended"]

# Release the lease only if it is still ours (it may have expired and been taken).
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


@dataclass(frozen=True)
class Reminder:
    kind: ReminderKind
    enterprise_id: str
    enterprise_name: str
    edition: str  # the edition expiring / expired, or the trial's edition
    until: datetime  # the expiry or the trial's end
    days_left: int  # 0 once it has ended
    back_to: str = FREE_EDITION  # after an end: the edition now in effect


class Notifier(Protocol):
    async def remind(self, chat_id: int, lang: str, reminder: Reminder) -> bool:
        """Tell one chat; False when it could not be told (blocked, gone)."""
        ...


@dataclass
class TickReport:
    ran: bool  # False: another instance holds the lease
    editions_expired: list[str] = field(default_factory=list)  # enterprise ids
    trials_ended: list[str] = field(default_factory=list)
    orders_expired: int = 0
    reminders: list[tuple[str, str, int]] = field(default_factory=list)  # (kind, enterprise id, chat id)


class Scheduler:
    def __init__(
        self,
        redis: Redis,
        clock: Clock,
        catalog: Catalog,
        enterprises: RedisEnterpriseDirectory,
        orders: OrderService,
        trials: TrialService,
        notifier: Notifier | None = None,
        *,
        interval_seconds: int = 60,
        lease_seconds: int = 300,
        jobs: Sequence[Callable[[], Awaitable[object]]] = (),
    ) -> None:
        self._redis = redis
        self._clock = clock
        self._catalog = catalog
        self._enterprises = enterprises
        self._orders = orders
        self._trials = trials
        self.notifier = notifier
        self._jobs = tuple(jobs)  # more work of a tick, done by the one instance holding it
        self._interval = max(1, interval_seconds)
        self._lease_ms = lease_seconds * 1000
        self._release = redis.register_script(_RELEASE)

    async def tick(self) -> TickReport:
        """Do what is due now, unless another instance does this tick (or is still on the last)."""
        token = secrets.token_hex(8)
        slot = int(self._clock.now().timestamp() // self._interval)
        if not await self._redis.set(keys.scheduler_tick(slot), token, nx=True, ex=self._interval * 3):
            log.debug("scheduler.skip tick %s taken by another instance", slot)
            return TickReport(ran=False)
        if not await self._redis.set(keys.scheduler_lease(), token, nx=True, px=self._lease_ms):
            log.debug("scheduler.skip lease held elsewhere")
            return TickReport(ran=False)
        report = TickReport(ran=True)
        try:
            report.orders_expired = await self._orders.expire_due()
            for enterprise in await self._enterprises.all():
                await self._enterprise(enterprise, report)
            for job in self._jobs:
                try:
                    await job()
                except Exception:  # the next tick tries again; the tick's own work is done
                    log.exception("scheduler.job_failed")
        finally:
            await self._release(keys=[keys.scheduler_lease()], args=[token])
        if report.editions_expired or report.trials_ended or report.orders_expired or report.reminders:
            log.info("scheduler.tick editions_expired=%d trials_ended=%d orders_expired=%d reminders=%d",
                     len(report.editions_expired), len(report.trials_ended), report.orders_expired,
                     len(report.reminders))
        return report

    async def _enterprise(self, ent: Enterprise, report: TickReport) -> None:
        now = self._clock.now()
        try:
            # Reminders before an edition expires: the most urgent threshold reached, once.
            expiry = ent.paid_expiry(now)  # set while a bought edition is in effect
            if expiry is not None:
                left = days_left(expiry, now)
                due = [d for d in self._catalog.edition_reminder_days if left <= d]
                if due:
                    await self._remind(ent, Reminder("edition_expiring", ent.id, ent.name, ent.edition,
                                                     expiry, left), min(due), report)
            # An edition past its expiry returns to 体验版.
            elif ent.edition != FREE_EDITION and ent.expires_at is not None:
                expired_edition, until = ent.edition, ent.expires_at
                updated = await self._expire_edition(ent.id)
                if updated is not None:
                    ent = updated
                    report.editions_expired.append(ent.id)
                    await self._remind(ent, Reminder("edition_expired", ent.id, ent.name, expired_edition,
                                                     until, 0), 0, report)
            trial = ent.trial
            if trial is not None and trial.ended_at is None:
                if trial.ends_at <= now:
                    closed = await self._trials.end(ent.id, self._enterprises)
                    if closed is not None:
                        report.trials_ended.append(ent.id)
                        back = closed.paid_edition(now)
                        await self._remind(closed, Reminder("trial_ended", ent.id, ent.name, trial.edition,
                                                            trial.ends_at, 0, back), 0, report)
                else:
                    left = days_left(trial.ends_at, now)
                    due = [d for d in self._catalog.trial_reminder_days if left <= d]
                    if due:
                        await self._remind(ent, Reminder("trial_ending", ent.id, ent.name, trial.edition,
                                                         trial.ends_at, left, ent.paid_edition(trial.ends_at)),
                                           min(due), report)
        except Exception:  # one enterprise's trouble must not stop the others' reminders
            log.exception("scheduler.enterprise_failed enterprise=%s", ent.id)

    async def _expire_edition(self, enterprise_id: str) -> Enterprise | None:
        now = self._clock.now()
        changed: list[bool] = []

        def mutate(ent: Enterprise) -> None:
            changed.clear()
            if ent.edition != FREE_EDITION and (ent.expires_at is None or ent.expires_at <= now):
                ent.edition = FREE_EDITION
                ent.expires_at = None
                changed.append(True)

        try:
            ent = await self._enterprises.update(enterprise_id, mutate)
        except EnterpriseNotFound:
            return None
        return ent if changed else None

    async def _remind(self, ent: Enterprise, reminder: Reminder, threshold: int, report: TickReport) -> None:
        """Send once per enterprise, term end and threshold, to every chat of its buyers."""
        what = reminder.kind.split("_")[0]  # edition or trial
        until = int(reminder.until.timestamp())
        claim = keys.reminder_sent(ent.id, what if reminder.days_left else reminder.kind, until, threshold)
        keep = max(86400, int((reminder.until - self._clock.now()).total_seconds()) + 40 * 86400)
        if not await self._redis.set(claim, self._clock.now().isoformat(), nx=True, ex=keep):
            return
        if self.notifier is None:
            return
        told: set[int] = set()
        for phone in ent.buyers():
            for chat_id, lang in (await self._enterprises.chats_of(phone)).items():
                if chat_id in told:
                    continue
                told.add(chat_id)
                try:
                    if await self.notifier.remind(chat_id, lang, reminder):
                        report.reminders.append((reminder.kind, ent.id, chat_id))
                except Exception:
                    log.exception("scheduler.remind_failed enterprise=%s chat=%s", ent.id, chat_id)
