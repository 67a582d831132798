"""Time-driven work (services.scheduler) on a real Redis with a fixed clock: editions and trials
that end, unpaid orders, reminders 30/7/1 days before an edition expires and before a trial
ends — each once — and the lease that lets one instance work per tick."""
from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from services import keys
from services.billing import renewal_quote
from services.catalog import load_catalog
from services.clock import FixedClock
from services.enterprises import RedisEnterpriseDirectory, Role
from services.orders import Channel, OrderService, OrderStatus
from services.scheduler import Reminder, Scheduler, TickReport
from services.trials import TrialForm, TrialService

UTC = UTC
NOW = datetime(2026, 1, 5, 2, 0, tzinfo=UTC)
CATALOG = load_catalog()
ADMIN, BILLING, MEMBER = "+8613800138000", "+8613800138001", "+8613800138002"


class Outbox:
    """A notifier that records what it was asked to send; chats in `blocked` cannot be told."""

    def __init__(self) -> None:
        self.sent: list[tuple[int, str, Reminder]] = []
        self.blocked: set[int] = set()

    async def remind(self, chat_id: int, lang: str, reminder: Reminder) -> bool:
        if chat_id in self.blocked:
            raise RuntimeError("blocked")
        self.sent.append((chat_id, lang, reminder))
        return True

    def kinds(self) -> list[tuple[str, int]]:
        return [(r.kind, r.days_left) for _, _, r in self.sent]


@pytest.fixture
def clock():
    return FixedClock(NOW)


@pytest.fixture
def world(redis, clock):
    directory = RedisEnterpriseDirectory(redis, clock)
    orders = OrderService(redis, clock, CATALOG)
    trials = TrialService(redis, clock, CATALOG)
    outbox = Outbox()

    def scheduler(notifier=outbox) -> Scheduler:
        return Scheduler(redis, clock, CATALOG, directory, orders, trials, notifier)

    return directory, orders, trials, outbox, scheduler


async def enterprise(directory, *, edition="advanced", days: float = 40):
    ent = await directory.add("深圳示例科技有限公司", verified=True)
    await directory.add_member(ent.id, ADMIN, Role.SUPER_ADMIN)
    await directory.add_member(ent.id, BILLING, Role.BILLING_ADMIN)
    await directory.add_member(ent.id, MEMBER, Role.MEMBER)
    await directory.remember_chat(ADMIN, 101, "zh")
    await directory.remember_chat(BILLING, 102, "en")
    await directory.remember_chat(MEMBER, 103, "zh")  # a plain member: not told

    def mutate(e):
        e.edition = edition
        e.expires_at = NOW + timedelta(days=days) if edition != "experience" else None

    return await directory.update(ent.id, mutate)


async def test_edition_reminders_go_30_7_and_1_days_before_each_once_to_the_buyers(world, clock):
    directory, _, _, outbox, scheduler = world
    await enterprise(directory, days=40)
    s = scheduler()
    await s.tick()
    assert outbox.sent == []  # 40 days left: nothing yet

    seen = []
    for day in range(1, 41):  # one tick a day, two ticks some days
        clock.set(NOW + timedelta(days=day) - timedelta(hours=1))
        await s.tick()
        clock.advance(minutes=1)
        await s.tick()
        seen += outbox.kinds()
        outbox.sent.clear()
    expiring = [k for k in seen if k[0] == "edition_expiring"]
    # each threshold reached once, to the super admin and the billing admin (not the member)
    assert expiring == [("edition_expiring", 30)] * 2 + [("edition_expiring", 7)] * 2 + [("edition_expiring", 1)] * 2


async def test_reminders_go_to_the_buyers_chats_in_their_language_with_the_days_left(world, clock):
    directory, _, _, outbox, scheduler = world
    ent = await enterprise(directory, days=7)
    await scheduler().tick()
    assert sorted((chat, lang) for chat, lang, _ in outbox.sent) == [(101, "zh"), (102, "en")]
    r = outbox.sent[0][2]
    assert (r.kind, r.enterprise_id, r.edition, r.until, r.days_left) == (
        "edition_expiring", ent.id, "advanced", NOW + timedelta(days=7), 7)


async def test_a_late_first_tick_sends_only_the_most_urgent_reminder(world, clock):
    directory, _, _, outbox, scheduler = world
    await enterprise(directory, days=5)  # 30 and 7 both reached; 7 is the one that matters
    await scheduler().tick()
    assert set(outbox.kinds()) == {("edition_expiring", 5)}
    clock.advance(days=1)
    await scheduler().tick()
    assert len(outbox.sent) == 2  # not again for the 7-day threshold


async def test_a_renewal_re_arms_the_reminders_for_the_new_expiry(world, clock):
    directory, orders, _, outbox, scheduler = world
    ent = await enterprise(directory, days=6)
    await scheduler().tick()
    assert len(outbox.sent) == 2
    order, _ = await orders.create(user_id=1, chat_id=101, cart_id="c", quote=renewal_quote(CATALOG, "advanced", 1),
                                   channel=Channel.CHAT, phone=ADMIN, enterprise_id=ent.id, enterprise_name=ent.name)
    await orders.mark_paid(order.id, charge_id="x", amount_fen=480_000, currency="CNY", provider="telegram")
    outbox.sent.clear()
    clock.set(NOW + timedelta(days=6 + 365 - 30))  # 30 days before the new expiry
    await scheduler().tick()
    assert set(outbox.kinds()) == {("edition_expiring", 30)}


async def test_an_edition_past_its_expiry_returns_to_experience_once(world, clock):
    directory, _, _, outbox, scheduler = world
    ent = await enterprise(directory, days=1, edition="professional")
    clock.advance(days=1, seconds=1)
    report = await scheduler().tick()
    assert report.editions_expired == [ent.id]
    after = await directory.get(ent.id)
    assert (after.edition, after.expires_at, after.contracts_left) == ("experience", None, ent.contracts_left)
    assert ("edition_expired", 0) in outbox.kinds()
    outbox.sent.clear()
    clock.advance(minutes=1)
    report = await scheduler().tick()
    assert report.editions_expired == [] and outbox.sent == []


async def test_R14_a_trial_is_reminded_a_day_before_its_end_and_closed_after_it(world, clock):
    directory, _, trials, outbox, scheduler = world
    ent = await enterprise(directory, edition="experience")
    form = TrialForm(enterprise_id=ent.id, edition="flagship", confirmed=True, contact_name="张三",
                     contact_phone="+8613912345678", industry="other", volume="lt_1k")
    await trials.start(form, user_id=1, applicant_phone=ADMIN)
    clock.advance(days=5)
    await scheduler().tick()
    assert outbox.sent == []
    clock.advance(days=1, hours=1)
    await scheduler().tick()
    assert set(outbox.kinds()) == {("trial_ending", 1)}
    assert outbox.sent[0][2].back_to == "experience"
    outbox.sent.clear()
    clock.advance(hours=23)
    report = await scheduler().tick()
    assert report.trials_ended == [ent.id]
    assert set(outbox.kinds()) == {("trial_ended", 0)}
    after = await directory.get(ent.id)
    assert after.trial.ended_at == clock.now() and after.edition_in_effect(clock.now()) == "experience"
    outbox.sent.clear()
    clock.advance(minutes=1)
    assert (await scheduler().tick()).ran
    assert outbox.sent == []


async def test_unpaid_orders_expire(world, clock):
    directory, orders, _, _, scheduler = world
    ent = await enterprise(directory, days=100)
    order, _ = await orders.create(user_id=1, chat_id=1, cart_id="c", quote=renewal_quote(CATALOG, "advanced", 1),
                                   enterprise_id=ent.id)
    clock.advance(minutes=29)
    assert (await scheduler().tick()).orders_expired == 0
    clock.advance(minutes=2)
    assert (await scheduler().tick()).orders_expired == 1
    raw = await orders._redis.get(keys.order(order.id))  # as stored, not expired on read
    assert OrderStatus.EXPIRED.value in raw


async def test_only_one_instance_works_per_tick(world, redis, clock):
    directory, _, _, outbox, scheduler = world
    await enterprise(directory, days=7)
    reports = await asyncio.gather(*(scheduler().tick() for _ in range(5)))
    assert sum(r.ran for r in reports) == 1
    assert len(outbox.sent) == 2
    assert [r.ran for r in [await scheduler().tick() for _ in range(3)]] == [False] * 3  # the same tick
    clock.advance(minutes=1)
    assert (await scheduler().tick()).ran is True  # the next one
    # A lease still held by another instance (a slow tick): this one skips.
    clock.advance(minutes=1)
    await redis.set(keys.scheduler_lease(), "someone-else", px=60_000)
    assert (await scheduler().tick()).ran is False
    assert await redis.get(keys.scheduler_lease()) == "someone-else"  # not released by us


async def test_concurrent_ticks_never_send_a_reminder_twice(world):
    directory, _, _, outbox, scheduler = world
    await enterprise(directory, days=7)
    # As if a lease had run out mid-tick: two instances work on the same enterprise at once;
    # the per-reminder claim still lets one of them send.
    (ent,) = await directory.all()
    await asyncio.gather(*(scheduler()._enterprise(ent, TickReport(ran=True)) for _ in range(4)))
    assert len(outbox.sent) == 2


async def test_a_chat_that_cannot_be_told_does_not_stop_the_others(world):
    directory, _, _, outbox, scheduler = world
    outbox.blocked.add(101)
    await enterprise(directory, days=1)
    await scheduler().tick()
    assert [chat for chat, _, _ in outbox.sent] == [102]
