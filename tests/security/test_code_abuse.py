"""Nobody can lock a buyer out of their own phone (docs/security.md, "SMS codes").

Strangers asking codes for a victim's number share part of the phone's budget; the rest is
its owner's (a shared contact of their own, or a code they verified before). The SMS vendor's
limits — 1 per 30 s, 5 per hour, 10 per day per phone — hold in every sliding window, whoever
asks. A live code belongs to whoever asked for it; nobody else's request replaces it.
Driven by the fixed clock, at scale: 1,000 attacker accounts against one victim."""
from __future__ import annotations

import asyncio
import random
from collections import Counter
from datetime import UTC, datetime

from services.clock import FixedClock
from services.codes import PhoneCodeService, SendResult
from services.sms import ConsoleSms

VICTIM = "+8613800138000"
OWNER = 7_000_000_001
ATTACKERS = range(8_000_000_000, 8_000_001_000)  # 1,000 accounts
SECRET = b"test-secret"
VENDOR_LIMITS = ((30, 1), (3600, 5), (86400, 10))  # (window seconds, SMS at most), per phone


def vendor_limits_hold(times: list[datetime]) -> list[str]:
    """Every sliding window of the vendor's, over the SMS one phone received."""
    stamps = sorted(t.timestamp() for t in times)
    broken = []
    for span, most in VENDOR_LIMITS:
        for i, start in enumerate(stamps):
            inside = sum(1 for t in stamps[i:] if t < start + span)
            if inside > most:
                broken.append(f"{inside} SMS within {span}s from {datetime.fromtimestamp(start, UTC)}")
                break
    return broken


async def owner_gets_a_code(svc: PhoneCodeService, clock: FixedClock) -> SendResult:
    """The owner shares their own contact; waits out at most the vendor's 30 s spacing."""
    result = await svc.send(OWNER, VICTIM, proven=True)
    if result.status == "cooldown":
        assert result.retry_after <= 30, result
        clock.advance(seconds=result.retry_after)
        result = await svc.send(OWNER, VICTIM, proven=True)
    return result


async def test_1000_attackers_cannot_lock_the_owner_out_or_spend_their_code(redis, clock: FixedClock) -> None:
    sms = ConsoleSms(clock=clock)
    svc = PhoneCodeService(redis, clock, sms, SECRET)
    quiet_print = asyncio.Semaphore(200)  # the console SMS prints; concurrency bounded by the pool anyway

    # The owner asks first (typing the number) and is about to enter the code.
    assert (await svc.send(OWNER, VICTIM)).sent
    owners_code = sms.last_code(VICTIM)

    async def attack(uid: int) -> str:
        async with quiet_print:
            return (await svc.send(uid, VICTIM)).status

    # All 1,000 at once: one SMS goes out (the vendor's spacing), nobody else's request
    # touches the owner's live code.
    clock.advance(seconds=31)
    burst = Counter(await asyncio.gather(*(attack(uid) for uid in ATTACKERS)))
    assert burst == {"sent": 1, "cooldown": 999}, burst
    assert (await svc.verify(OWNER, VICTIM, owners_code)).ok

    # Two days of hammering: every minute 12 attackers ask again, concurrently. The owner
    # comes every five hours, typing the number, then sharing their contact when told to:
    # their share of the phone is what strangers may not use, 10 - 5 a day and 5 - 3 an hour.
    rng = random.Random(18)
    statuses: Counter[str] = Counter()
    owner_results: list[tuple[str, str]] = []
    for minute in range(1, 2 * 24 * 60 + 1):
        clock.advance(minutes=1)
        wave = rng.sample(ATTACKERS, 12)
        statuses.update(await asyncio.gather(*(attack(uid) for uid in wave)))
        if minute % 300 == 0:
            typed = await svc.send(OWNER, VICTIM)
            result = typed if typed.sent else await owner_gets_a_code(svc, clock)
            owner_results.append((typed.status, result.status))
            if result.sent:
                assert (await svc.verify(OWNER, VICTIM, sms.last_code(VICTIM) or "")).ok

    victim_sms = [m.at for m in sms.outbox if m.phone == VICTIM]
    print(f"figures: burst={dict(burst)} waves={dict(statuses)} victim_sms={len(victim_sms)} owner={owner_results}")
    owner_sends = sum(1 for typed, final in owner_results if final == "sent")
    attacker_sends = len(victim_sms) - 1 - owner_sends  # minus the owner's very first code
    assert not vendor_limits_hold(victim_sms), vendor_limits_hold(victim_sms)
    # Strangers together get at most five a day (plus the burst's one on day one)...
    assert attacker_sends <= 5 * 2 + 1, (attacker_sends, statuses)
    assert statuses["prove_ownership"] > 30_000, statuses  # ... and almost all were refused
    # ... and the owner was served every single time they came.
    assert len(owner_results) == 9 and all(final == "sent" for _, final in owner_results), owner_results
    # Typing the number worked too once the owner had verified a code: that proves it.
    assert all(typed == "sent" or typed == "cooldown" for typed, _ in owner_results[1:]), owner_results


async def test_an_owner_who_never_verified_is_told_to_share_their_contact(redis, clock: FixedClock) -> None:
    sms = ConsoleSms(clock=clock)
    svc = PhoneCodeService(redis, clock, sms, SECRET)
    for n, uid in enumerate(ATTACKERS[:50]):
        clock.advance(seconds=31)
        await svc.send(uid, VICTIM)
        if n == 10:
            break
    typed = await svc.send(OWNER, VICTIM)
    assert typed.status == "prove_ownership" and not typed.proven
    shared = await owner_gets_a_code(svc, clock)
    assert shared.sent and shared.proven


async def test_the_vendor_limits_hold_for_any_mix_of_requests(redis, clock: FixedClock) -> None:
    """Random owners, strangers and proven users asking at random moments over three days:
    whatever the mix, no sliding window of the vendor's is ever exceeded."""
    sms = ConsoleSms(clock=clock)
    svc = PhoneCodeService(redis, clock, sms, SECRET)
    rng = random.Random(1818)
    for _ in range(3000):
        clock.advance(seconds=rng.choice([1, 5, 17, 29, 30, 31, 61, 300, 1800]))
        await svc.send(rng.choice([OWNER, *ATTACKERS[:20]]), VICTIM, proven=rng.random() < 0.3)
    times = [m.at for m in sms.outbox]
    assert len(times) > 20
    assert not vendor_limits_hold(times), vendor_limits_hold(times)


async def test_codes_go_only_to_the_countries_served(redis, clock: FixedClock) -> None:
    """SMS pumping: premium-rate destinations cost money; SMS_COUNTRY_CODES (86, 852, 853, 886 by
    default) is all that is served."""
    from services.codes import CodePolicy

    sms = ConsoleSms(clock=clock)
    svc = PhoneCodeService(redis, clock, sms, SECRET, policy=CodePolicy(country_codes=frozenset({86, 852, 853, 886})))
    for phone in ("+16502530000", "+442079460000", "+88213100000"):
        assert (await svc.send(OWNER, phone)).status == "not_served"
    for phone in (VICTIM, "+85291234567", "+85366123456", "+886912345678"):
        assert (await svc.send(OWNER, phone)).sent
        clock.advance(seconds=61)
    assert [m.phone for m in sms.outbox] == [VICTIM, "+85291234567", "+85366123456", "+886912345678"]


async def test_a_number_of_another_country_is_refused_in_chat(esign_harness):
    from tests.flows.steps import to_phone

    buyer = esign_harness.user()
    await to_phone(buyer)
    screen = await buyer.send("+1 650 253 0000")
    assert "暂不支持向该国家或地区的手机号发送验证码" in screen.text
    assert esign_harness.sms.count("+16502530000") == 0
