"""services.support on a real Redis: tickets (F11, R16, R17), the queue, transcripts, bans,
the flood limit, topics created once, and working hours (services.support_config)."""
import asyncio
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from services.clock import FixedClock
from services.support import (
    Intake,
    IntakeCart,
    QuoteRecord,
    SupportService,
    TicketKind,
    TicketStatus,
    TranscriptEntry,
    negotiated_lines,
)
from services.support_config import (
    DEFAULT_SUPPORT_PATH,
    SupportConfigError,
    load_support_config,
)

CUSTOMER = 5_000_001
STAFF = -100_555


def beijing(year, month, day, hour, minute=0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=timezone(timedelta(hours=8))).astimezone(UTC)


@pytest.fixture
def support(redis, clock) -> SupportService:
    return SupportService(redis, clock, load_support_config())


def intake(kind=TicketKind.CONTACT, **extra) -> Intake:
    return Intake(kind=kind, name="Alice", username="alice", lang="zh", **extra)


# --- tickets ---------------------------------------------------------------------------------


async def test_F11_a_new_ticket_waits_in_the_queue(support):
    outcome = await support.open_ticket(CUSTOMER, intake(TicketKind.CONSULT, cart=IntakeCart(edition="flagship")))
    assert outcome.status == "created"
    ticket = outcome.ticket
    assert ticket.status is TicketStatus.PENDING and ticket.kind is TicketKind.CONSULT
    assert [t.id for t in await support.queue()] == [ticket.id]
    assert await support.queue_position(ticket.id) == 1
    assert (await support.live_ticket(CUSTOMER)).id == ticket.id


async def test_F11_a_customer_never_has_two_live_tickets(support):
    first = await support.open_ticket(CUSTOMER, intake())
    again = await support.open_ticket(CUSTOMER, intake(TicketKind.INVOICE), order_id="o1")
    assert again.status == "existing" and again.ticket.id == first.ticket.id
    assert again.ticket.order_ids == ["o1"]
    assert len(await support.queue()) == 1


async def test_F11_concurrent_entries_make_one_ticket(support):
    outcomes = await asyncio.gather(*(support.open_ticket(CUSTOMER, intake()) for _ in range(5)))
    assert len({o.ticket.id for o in outcomes}) == 1
    assert sorted(o.status for o in outcomes) == ["created"] + ["existing"] * 4
    assert len(await support.history(CUSTOMER)) == 1


async def test_F11_claim_close_and_the_queue(support):
    ticket = (await support.open_ticket(CUSTOMER, intake())).ticket
    claimed = await support.claim(ticket.id, agent_id=1)
    assert claimed.status == "claimed" and claimed.ticket.status is TicketStatus.OPEN
    assert await support.queue() == []
    assert (await support.claim(ticket.id, agent_id=1)).status == "already"
    assert (await support.claim(ticket.id, agent_id=2)).status == "taken"

    closed = await support.resolve(ticket.id, by="agent", agent_id=1)
    assert closed.status == "resolved_now" and closed.ticket.status is TicketStatus.RESOLVED
    assert (await support.resolve(ticket.id, by="customer")).status == "resolved"
    assert await support.live_ticket(CUSTOMER) is None
    assert (await support.claim(ticket.id, agent_id=2)).status == "resolved"


async def test_F11_two_agents_claiming_at_once_one_wins(support):
    ticket = (await support.open_ticket(CUSTOMER, intake())).ticket
    results = await asyncio.gather(*(support.claim(ticket.id, agent_id=a) for a in (1, 2, 3)))
    assert sorted(r.status for r in results) == ["claimed", "taken", "taken"]


async def test_F11_transfer_hands_the_ticket_over(support):
    ticket = (await support.open_ticket(CUSTOMER, intake())).ticket
    await support.claim(ticket.id, agent_id=1)
    moved = await support.transfer(ticket.id, to_agent=2, by_agent=1)
    assert moved.status == "transferred" and moved.ticket.agent_id == 2
    assert (await support.transfer(ticket.id, to_agent=2, by_agent=1)).status == "same"


async def test_F11_reopen_within_the_window_only(support, clock):
    ticket = (await support.open_ticket(CUSTOMER, intake())).ticket
    await support.claim(ticket.id, agent_id=7)
    await support.resolve(ticket.id, by="customer")
    clock.advance(minutes=29)
    reopened = await support.reopen_recent(CUSTOMER)
    assert reopened.status == "reopened"
    assert reopened.ticket.status is TicketStatus.OPEN and reopened.ticket.agent_id == 7  # the same agent

    await support.resolve(ticket.id, by="agent", agent_id=7)
    clock.advance(minutes=31)
    assert (await support.reopen_recent(CUSTOMER)).status == "too_late"
    assert await support.live_ticket(CUSTOMER) is None


async def test_F11_an_unclaimed_ticket_reopens_into_the_queue(support, clock):
    ticket = (await support.open_ticket(CUSTOMER, intake())).ticket
    await support.resolve(ticket.id, by="customer")
    clock.advance(minutes=5)
    reopened = await support.reopen_recent(CUSTOMER)
    assert reopened.ticket.status is TicketStatus.PENDING
    assert [t.id for t in await support.queue()] == [ticket.id]


async def test_F11_the_queue_is_oldest_first(support, clock):
    ids = []
    for n in range(3):
        ids.append((await support.open_ticket(CUSTOMER + n, intake())).ticket.id)
        clock.advance(minutes=1)
    assert [t.id for t in await support.queue()] == ids
    assert await support.queue_position(ids[2]) == 3


async def test_F11_history_lists_past_tickets_newest_first(support, clock):
    first = (await support.open_ticket(CUSTOMER, intake())).ticket
    await support.resolve(first.id, by="customer")
    clock.advance(hours=2)
    second = (await support.open_ticket(CUSTOMER, intake(TicketKind.CONSULT))).ticket
    assert second.id != first.id
    assert [t.id for t in await support.history(CUSTOMER)] == [second.id, first.id]


async def test_R16_invoice_issued_once(support):
    ticket = (await support.open_ticket(CUSTOMER, intake(TicketKind.INVOICE), order_id="o42")).ticket
    assert (await support.mark_invoice_issued(ticket.id, "o42", agent_id=1)).status == "issued"
    assert (await support.mark_invoice_issued(ticket.id, "o42", agent_id=1)).status == "already"
    assert (await support.mark_invoice_issued(ticket.id, "o99", agent_id=1)).status == "not_this_ticket"
    assert await support.invoice_issued_at("o42") is not None


# --- bans, flood, transcript -----------------------------------------------------------------


async def test_F11_ban_resolves_the_ticket_and_refuses_new_ones(support, clock):
    ticket = (await support.open_ticket(CUSTOMER, intake())).ticket
    banned = await support.ban(CUSTOMER, agent_id=1, reason="spam")
    assert banned.status == "banned" and banned.ticket.resolved_by == "ban"
    assert (await support.open_ticket(CUSTOMER, intake())).status == "banned"
    assert (await support.reopen_recent(CUSTOMER)).status == "banned"
    assert (await support.unban(CUSTOMER)).status == "unbanned"
    assert (await support.reopen_recent(CUSTOMER)).status == "too_late"  # a banned ticket stays closed
    assert (await support.open_ticket(CUSTOMER, intake())).ticket.id != ticket.id


async def test_F11_flood_limit_per_window(support, clock):
    limit = support.config.flood.messages
    results = [await support.flood(CUSTOMER) for _ in range(limit + 2)]
    assert results[:limit] == ["ok"] * limit
    assert results[limit:] == ["first_over", "over"]
    clock.advance(seconds=support.config.flood.seconds)
    assert await support.flood(CUSTOMER) == "ok"


async def test_F11_transcript_is_capped(redis, clock):
    config = load_support_config().model_copy(update={"transcript_max": 3})
    support = SupportService(redis, clock, config)
    for n in range(5):
        await support.record("t1", TranscriptEntry(at=clock.now(), who="customer", text=f"m{n}"))
    assert [e.text for e in await support.transcript("t1")] == ["m2", "m3", "m4"]
    assert [e.text for e in await support.transcript("t1", limit=2)] == ["m3", "m4"]
    long = "x" * 5000
    await support.record("t1", TranscriptEntry(at=clock.now(), who="agent", text=long))
    assert len((await support.transcript("t1", limit=1))[0].text) == 1000


# --- topics ----------------------------------------------------------------------------------


async def test_F11_concurrent_callers_create_one_topic(support):
    created = []

    async def create() -> int:
        await asyncio.sleep(0.05)  # Telegram takes a while: the others arrive meanwhile
        created.append(1)
        return 100 + len(created)

    results = await asyncio.gather(*(support.ensure_topic(CUSTOMER, STAFF, create) for _ in range(4)))
    assert created == [1]
    assert {thread for thread, _ in results} == {101}
    assert sorted(made for _, made in results) == [False, False, False, True]
    assert await support.topic_customer(STAFF, 101) == CUSTOMER


async def test_F11_a_forgotten_topic_is_created_again_but_a_newer_one_is_kept(support):
    async def make(n):
        async def create():
            return n
        return create

    assert (await support.ensure_topic(CUSTOMER, STAFF, await make(10)))[0] == 10
    await support.forget_topic(CUSTOMER, STAFF, 10)
    assert await support.topic_customer(STAFF, 10) is None
    assert await support.ensure_topic(CUSTOMER, STAFF, await make(11)) == (11, True)
    await support.forget_topic(CUSTOMER, STAFF, 10)  # a late failure on the old topic
    assert (await support.customer(CUSTOMER)).topic_id == 11


async def test_F11_links_both_ways(support):
    await support.link((CUSTOMER, 5), (STAFF, 77))
    assert await support.linked(CUSTOMER, 5) == (STAFF, 77)
    assert await support.linked(STAFF, 77) == (CUSTOMER, 5)
    assert await support.linked(STAFF, 78) is None


async def test_F11_agents_by_alias_username_or_id(support):
    await support.register_agent(11, "Li Lei", "lilei")
    await support.set_alias(11, "客服小李")
    await support.register_agent(12, "Han Meimei", None)
    assert (await support.find_agent("客服小李")).id == 11
    assert (await support.find_agent("@lilei")).id == 11
    assert (await support.find_agent("12")).id == 12
    assert await support.find_agent("nobody") is None
    agent = await support.register_agent(11, "Li Lei", "lilei")
    assert agent.alias == "客服小李"  # a new message keeps the alias


async def test_F11_a_quote_payment_is_told_once(support, clock):
    record = QuoteRecord(order_id="o1", ticket_id="t1", user_id=CUSTOMER, list_total_fen=100,
                         total_fen=90, created_at=clock.now())
    await support.record_quote(record)
    assert await support.quotes_waiting() == ["o1"]
    told = await asyncio.gather(support.quote_paid("o1"), support.quote_paid("o1"))
    assert sum(1 for t in told if t is not None) == 1
    assert await support.quotes_waiting() == []


def test_F11_negotiated_price_is_spread_over_the_lines():
    assert negotiated_lines([5_980_000, 3_000_000], 8_000_000) == [5_327_395, 2_672_605]
    assert sum(negotiated_lines([5_980_000, 3_000_000], 8_000_000)) == 8_000_000
    assert negotiated_lines([5_980_000], 5_000_000) == [5_000_000]
    with pytest.raises(ValueError):
        negotiated_lines([5_980_000], 0)
    with pytest.raises(ValueError):
        negotiated_lines([100, 1], 1)  # a line would be free


# --- working hours and the config ------------------------------------------------------------


def test_F11_working_hours_in_beijing_time():
    hours = load_support_config().hours_of_work  # every day 09:00–21:00, Asia/Shanghai
    assert hours.is_open(beijing(2026, 1, 5, 10))
    assert hours.is_open(beijing(2026, 1, 5, 9))
    assert not hours.is_open(beijing(2026, 1, 5, 21))
    assert not hours.is_open(beijing(2026, 1, 5, 8, 59))
    assert hours.next_open(beijing(2026, 1, 5, 22)) == beijing(2026, 1, 6, 9)
    assert hours.next_open(beijing(2026, 1, 5, 7)) == beijing(2026, 1, 5, 9)
    assert hours.next_open(beijing(2026, 1, 5, 10)) == beijing(2026, 1, 5, 10)


def test_F11_weekends_and_holidays(tmp_path: Path):
    path = tmp_path / "support.toml"
    path.write_text(
        'closed_dates = ["2026-01-06"]\n'
        "[[hours]]\ndays = [1, 2, 3, 4, 5]\nopen = \"09:00\"\nclose = \"18:00\"\n"
        "[[hours]]\ndays = [6]\nopen = \"10:00\"\nclose = \"12:00\"\n",
        encoding="utf-8",
    )
    config = load_support_config(path)
    hours = config.hours_of_work
    assert config.closed_dates == [date(2026, 1, 6)]
    # Monday evening → Tuesday is a holiday → Wednesday 09:00.
    assert hours.next_open(beijing(2026, 1, 5, 19)) == beijing(2026, 1, 7, 9)
    # Friday evening → Saturday 10:00; Saturday noon → Monday 09:00.
    assert hours.next_open(beijing(2026, 1, 9, 19)) == beijing(2026, 1, 10, 10)
    assert hours.next_open(beijing(2026, 1, 10, 12)) == beijing(2026, 1, 12, 9)


def test_F11_the_shipped_config_loads():
    config = load_support_config(DEFAULT_SUPPORT_PATH)
    assert config.timezone == "Asia/Shanghai" and config.hours


@pytest.mark.parametrize("text, field", [
    ('[[hours]]\ndays = [1]\nopen = "18:00"\nclose = "09:00"\n', "hours.0"),
    ('[[hours]]\ndays = [8]\nopen = "09:00"\nclose = "18:00"\n', "hours.0.days"),
    ('[[hours]]\ndays = [1]\nopen = "9am"\nclose = "18:00"\n', "hours.0.open"),
    ('timezone = "Mars/Olympus"\n[[hours]]\ndays = [1]\nopen = "09:00"\nclose = "18:00"\n', "timezone"),
    ('reply_minutes = "10"\n[[hours]]\ndays = [1]\nopen = "09:00"\nclose = "18:00"\n', "reply_minutes"),
    ('reopen_minutes = -1\n[[hours]]\ndays = [1]\nopen = "09:00"\nclose = "18:00"\n', "reopen_minutes"),
    ('hours = []\n', "hours"),
    ('closed_dates = ["tomorrow"]\n[[hours]]\ndays = [1]\nopen = "09:00"\nclose = "18:00"\n', "closed_dates"),
    ('surprise = 1\n[[hours]]\ndays = [1]\nopen = "09:00"\nclose = "18:00"\n', "surprise"),
])
def test_F11_a_bad_config_names_the_field(tmp_path: Path, text, field):
    path = tmp_path / "support.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(SupportConfigError) as error:
        load_support_config(path)
    assert f"{field}:" in str(error.value) or f"{field}." in str(error.value)


def test_F11_a_missing_or_broken_config_is_one_clear_error(tmp_path: Path):
    with pytest.raises(SupportConfigError, match="not found"):
        load_support_config(tmp_path / "nope.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("[[hours]\n", encoding="utf-8")
    with pytest.raises(SupportConfigError, match="not valid TOML"):
        load_support_config(broken)


def test_F11_the_fixed_clock_of_the_tests_is_in_working_hours():
    # The harness starts at 2026-01-05 10:00 Beijing: flow tests run in working hours.
    assert load_support_config().hours_of_work.is_open(FixedClock().now())
