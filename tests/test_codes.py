from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
from collections import Counter
from datetime import UTC, datetime

import fakeredis.aioredis
import pytest

from services import keys
from services.clock import FixedClock
from services.codes import CodePolicy, PhoneCodeService
from services.sms import ConsoleSms, SmsDeliveryError

PHONE = "+8613800138000"
SECRET = b"test-secret"
USER = 42


@pytest.fixture
def sms(clock: FixedClock) -> ConsoleSms:
    return ConsoleSms(clock=clock)


@pytest.fixture
def svc(redis, clock: FixedClock, sms: ConsoleSms) -> PhoneCodeService:
    return PhoneCodeService(redis, clock, sms, SECRET)


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 10**6:06d}"


async def sent_code(svc: PhoneCodeService, sms: ConsoleSms, phone: str = PHONE, user: int = USER) -> str:
    result = await svc.send(user, phone)
    assert result.status == "sent" and result.retry_after == 0
    return sms.last_code(sms.outbox[-1].phone)


async def test_send_then_verify_ok_once(svc: PhoneCodeService, sms: ConsoleSms) -> None:
    code = await sent_code(svc, sms, phone="138 0013 8000")  # any accepted form maps to the E.164 key
    assert sms.last_to(PHONE) == f"【腾讯电子签】您的验证码是 {code}，5分钟内有效。请勿泄露给他人。"
    result = await svc.verify(USER, "+86 138-0013-8000", f" {code[:3]} {code[3:]} ")
    assert result.status == "ok" and result.ok
    assert (await svc.verify(USER, PHONE, code)).status == "no_code"  # one use


async def test_english_and_custom_texts(redis, clock: FixedClock, sms: ConsoleSms) -> None:
    svc = PhoneCodeService(redis, clock, sms, SECRET)
    await svc.send(USER, PHONE, lang="en")
    code = sms.last_code(PHONE)
    assert sms.last_to(PHONE) == (
        f"[Tencent E-Sign] Your verification code is {code}. It is valid for 5 minutes. Do not share it."
    )
    custom = PhoneCodeService(redis, clock, sms, SECRET, texts=lambda lang: f"{{{lang}}} code={{code}}")
    await custom.send(USER, "+16502530000", lang="en")
    assert sms.last_to("+16502530000") == f"{{en}} code={sms.last_code('+16502530000')}"


async def test_stored_hash_holds_no_clear_code(
    redis, svc: PhoneCodeService, sms: ConsoleSms, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A fixed code, so it can't show up by chance inside the phone or a timestamp.
    monkeypatch.setattr("services.codes.secrets.randbelow", lambda n: 905172)
    code = await sent_code(svc, sms)
    assert code == "905172"
    stored = await redis.hgetall(keys.code(PHONE, USER))
    assert stored["digest"] == hmac.new(SECRET, f"{PHONE}:{code}".encode(), hashlib.sha256).hexdigest()
    for key in await redis.keys("*"):
        assert code not in key
        kind = await redis.type(key)
        if kind == "hash":
            assert all(code not in v for v in (await redis.hgetall(key)).values())
        elif kind == "zset":
            assert all(code not in v for v in await redis.zrange(key, 0, -1))
        else:
            assert code not in (await redis.get(key))
    assert await redis.ttl(keys.code(PHONE, USER)) > 0  # Redis cleans up too


async def test_resend_replaces_the_old_code(svc: PhoneCodeService, sms: ConsoleSms, clock: FixedClock) -> None:
    old = await sent_code(svc, sms)
    clock.advance(seconds=60)
    new = await sent_code(svc, sms)
    if old != new:
        assert (await svc.verify(USER, PHONE, old)).status == "wrong"
    assert (await svc.verify(USER, PHONE, new)).status == "ok"


async def test_wrong_tries_then_too_many(svc: PhoneCodeService, sms: ConsoleSms, clock: FixedClock) -> None:
    code = await sent_code(svc, sms)
    results = [await svc.verify(USER, PHONE, wrong(code)) for _ in range(5)]
    assert [(r.status, r.attempts_left) for r in results] == [
        ("wrong", 4), ("wrong", 3), ("wrong", 2), ("wrong", 1), ("too_many", 0),
    ]
    assert (await svc.verify(USER, PHONE, code)).status == "too_many"  # the code is dead
    clock.advance(seconds=60)
    fresh = await sent_code(svc, sms)
    assert (await svc.verify(USER, PHONE, fresh)).status == "ok"


async def test_malformed_does_not_take_a_try(svc: PhoneCodeService, sms: ConsoleSms) -> None:
    code = await sent_code(svc, sms)
    for bad in ["", "12345", "1234567", "12a456", "١٢٣٤٥"]:
        result = await svc.verify(USER, PHONE, bad)
        assert (result.status, result.attempts_left) == ("malformed", 5)
    assert (await svc.verify(USER, PHONE, wrong(code))).attempts_left == 4
    full_width = code.translate(str.maketrans("0123456789", "０１２３４５６７８９"))
    assert (await svc.verify(USER, PHONE, full_width)).status == "ok"
    assert (await svc.verify(USER, PHONE, "12")).attempts_left == 0  # no live code any more


async def test_expires_by_the_injected_clock(svc: PhoneCodeService, sms: ConsoleSms, clock: FixedClock) -> None:
    code = await sent_code(svc, sms)
    clock.advance(seconds=299)
    assert (await svc.verify(USER, PHONE, wrong(code))).status == "wrong"
    clock.advance(seconds=1)
    result = await svc.verify(USER, PHONE, code)
    assert (result.status, result.attempts_left) == ("expired", 0)


async def test_no_code_and_other_users(svc: PhoneCodeService, sms: ConsoleSms) -> None:
    assert (await svc.verify(USER, PHONE, "123456")).status == "no_code"
    code = await sent_code(svc, sms)
    # Someone else can't use (or burn tries on) a code another user asked for.
    assert (await svc.verify(USER + 1, PHONE, code)).status == "no_code"
    assert (await svc.verify(USER + 1, PHONE, wrong(code))).status == "no_code"
    assert (await svc.verify(USER, PHONE, code)).status == "ok"


async def test_cooldown(svc: PhoneCodeService, sms: ConsoleSms, clock: FixedClock) -> None:
    assert await svc.cooldown_left(USER, PHONE) == 0
    await sent_code(svc, sms)
    assert await svc.cooldown_left(USER, PHONE) == 60
    result = await svc.send(USER, PHONE)
    assert (result.status, result.retry_after) == ("cooldown", 60)
    # The vendor's spacing holds for everyone: one code to a phone per 30 s.
    clock.advance(seconds=29.5)
    assert (await svc.send(USER + 1, PHONE)).model_dump() == {"status": "cooldown", "retry_after": 1, "proven": False}
    clock.advance(seconds=0.5)
    await sent_code(svc, sms, user=USER + 1)  # another user's own code: the first user's cool-down is theirs
    clock.advance(seconds=29.5)
    assert await svc.cooldown_left(USER, "13800138000") == 1
    clock.advance(seconds=0.5)
    assert await svc.cooldown_left(USER, PHONE) == 0
    await sent_code(svc, sms)
    assert len(sms.outbox) == 3


async def test_hourly_phone_limit_is_a_sliding_window(svc: PhoneCodeService, sms: ConsoleSms,
                                                      clock: FixedClock) -> None:
    clock.set(datetime(2026, 1, 5, 2, 55, tzinfo=UTC))
    for _ in range(5):
        assert (await svc.send(USER, PHONE, proven=True)).sent
        clock.advance(seconds=60)
    # 03:00: a fixed clock-hour window would open again here (10 codes in 9 minutes); the
    # sliding hour waits until the first of the five is an hour old.
    clock.set(datetime(2026, 1, 5, 3, 0, tzinfo=UTC))
    result = await svc.send(USER, PHONE, proven=True)
    assert (result.status, result.retry_after) == ("phone_limit", 55 * 60)
    assert (await svc.send(USER, "+16502530000")).status == "sent"  # other phones are unaffected
    clock.set(datetime(2026, 1, 5, 3, 55, tzinfo=UTC))
    assert (await svc.send(USER, PHONE, proven=True)).sent


async def test_daily_phone_limit_is_a_sliding_window(svc: PhoneCodeService, sms: ConsoleSms,
                                                     clock: FixedClock) -> None:
    clock.set(datetime(2026, 1, 5, 18, 0, tzinfo=UTC))
    for _ in range(5):
        assert (await svc.send(USER, PHONE, proven=True)).sent
        clock.advance(seconds=60)
        assert (await svc.send(USER, PHONE, proven=True)).sent
        clock.advance(hours=1)
    # 23:05: ten in the last day; midnight UTC changes nothing, the first one's 24 h do.
    result = await svc.send(USER, PHONE, proven=True)
    assert (result.status, result.retry_after) == ("phone_limit", 24 * 3600 - 5 * 3600 - 300)
    clock.set(datetime(2026, 1, 6, 0, 5, tzinfo=UTC))
    assert (await svc.send(USER, PHONE, proven=True)).status == "phone_limit"
    clock.set(datetime(2026, 1, 6, 18, 0, tzinfo=UTC))
    assert (await svc.send(USER, PHONE, proven=True)).sent


async def test_user_caps(svc: PhoneCodeService, sms: ConsoleSms, clock: FixedClock) -> None:
    clock.set(datetime(2026, 1, 5, 12, 0, tzinfo=UTC))
    phones = [f"+86139001390{i:02d}" for i in range(21)]
    for phone in phones[:10]:
        await sent_code(svc, sms, phone=phone)
    result = await svc.send(USER, phones[10])
    assert (result.status, result.retry_after) == ("user_limit", 3600)  # ten an hour
    clock.advance(hours=1)
    for phone in phones[10:20]:
        await sent_code(svc, sms, phone=phone)
    result = await svc.send(USER, phones[20])
    assert (result.status, result.retry_after) == ("user_limit", 23 * 3600)  # twenty a day
    assert (await svc.send(USER + 1, phones[20])).status == "sent"


async def test_another_users_request_never_replaces_a_live_code(svc: PhoneCodeService, sms: ConsoleSms,
                                                                clock: FixedClock) -> None:
    owner, stranger = USER, USER + 1
    code = await sent_code(svc, sms, user=owner)
    clock.advance(seconds=30)
    theirs = await sent_code(svc, sms, user=stranger)
    assert (await svc.verify(stranger, PHONE, code)).status in ("wrong", "ok") and theirs  # their own code only
    assert (await svc.verify(owner, PHONE, code)).status == "ok"


async def test_strangers_share_a_part_of_the_phones_budget_and_the_owner_keeps_the_rest(
    svc: PhoneCodeService, sms: ConsoleSms, clock: FixedClock
) -> None:
    clock.set(datetime(2026, 1, 5, 8, 0, tzinfo=UTC))
    for n in range(3):  # three strangers, an hour: the hourly share of the unproven
        assert (await svc.send(1000 + n, PHONE)).sent
        clock.advance(seconds=30)
    refused = await svc.send(2000, PHONE)
    assert (refused.status, refused.proven) == ("prove_ownership", False)
    assert refused.retry_after == 3600 - 90
    owner = await svc.send(USER, PHONE, proven=True)  # a shared contact of their own
    assert (owner.status, owner.proven) == ("sent", True)
    clock.advance(hours=1)
    for n in range(2):  # two more: five a day for all strangers together
        assert (await svc.send(3000 + n, PHONE)).sent
        clock.advance(seconds=30)
    assert (await svc.send(4000, PHONE)).status == "prove_ownership"
    clock.advance(hours=2)
    assert (await svc.send(4000, PHONE)).status == "prove_ownership"  # the day's share is used up
    for _ in range(2):
        assert (await svc.send(USER, PHONE, proven=True)).sent
        clock.advance(minutes=1)


async def test_a_verified_code_proves_ownership_for_later_requests(svc: PhoneCodeService, sms: ConsoleSms,
                                                                   clock: FixedClock) -> None:
    code = await sent_code(svc, sms)  # typed: not proven yet
    assert (await svc.verify(USER, PHONE, code)).ok
    clock.advance(minutes=5)
    for n in range(2):  # with the first, the strangers' hourly share is used up
        assert (await svc.send(1000 + n, PHONE)).sent
        clock.advance(minutes=1)
    assert (await svc.send(1002, PHONE)).status == "prove_ownership"
    result = await svc.send(USER, PHONE)  # typed again, but proven by the code verified before
    assert (result.status, result.proven) == ("sent", True)
    clock.advance(days=91)
    assert (await svc.send(USER, PHONE)).proven is False  # a proof is kept 90 days


def test_a_policy_must_leave_the_owner_a_share() -> None:
    with pytest.raises(ValueError):
        CodePolicy(unproven_per_hour=5)
    with pytest.raises(ValueError):
        CodePolicy(unproven_per_day=10)


async def test_concurrent_wrong_guesses_count_exactly(redis, svc: PhoneCodeService, sms: ConsoleSms) -> None:
    code = await sent_code(svc, sms)
    results = await asyncio.gather(*(svc.verify(USER, PHONE, wrong(code)) for _ in range(8)))
    assert Counter(r.status for r in results) == {"wrong": 4, "too_many": 4}
    assert sorted(r.attempts_left for r in results if r.status == "wrong") == [1, 2, 3, 4]
    assert await redis.hget(keys.code(PHONE, USER), "tries") == "5"
    assert (await svc.verify(USER, PHONE, code)).status == "too_many"


async def test_concurrent_sends_pass_the_cooldown_once(svc: PhoneCodeService, sms: ConsoleSms) -> None:
    results = await asyncio.gather(*(svc.send(USER, PHONE) for _ in range(6)))
    assert Counter(r.status for r in results) == {"sent": 1, "cooldown": 5}
    assert len(sms.outbox) == 1
    assert (await svc.verify(USER, PHONE, sms.last_code(PHONE))).status == "ok"


async def test_concurrent_correct_verifies_succeed_once(svc: PhoneCodeService, sms: ConsoleSms) -> None:
    code = await sent_code(svc, sms)
    results = await asyncio.gather(*(svc.verify(USER, PHONE, code) for _ in range(4)))
    assert Counter(r.status for r in results)["ok"] == 1


async def test_failed_delivery_leaves_no_live_code(redis, clock: FixedClock) -> None:
    class Broken:
        async def send(self, phone: str, text: str) -> None:
            raise SmsDeliveryError("sms provider answered 500")

    svc = PhoneCodeService(redis, clock, Broken(), SECRET)
    with pytest.raises(SmsDeliveryError):
        await svc.send(USER, PHONE)
    assert not await redis.exists(keys.code(PHONE, USER))
    assert (await svc.send(USER, PHONE)).status == "cooldown"  # a failing provider isn't hammered


async def test_logs_hold_no_phone_or_code(
    svc: PhoneCodeService, sms: ConsoleSms, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    code = await sent_code(svc, sms)
    await svc.send(USER, PHONE)
    await svc.verify(USER, PHONE, wrong(code))
    await svc.verify(USER, PHONE, code)
    assert caplog.records
    for record in caplog.records:
        line = record.getMessage()
        assert "13800138000" not in line and code not in line and wrong(code) not in line


async def test_custom_policy(redis, clock: FixedClock, sms: ConsoleSms) -> None:
    policy = CodePolicy(max_attempts=2, cooldown_seconds=0, phone_spacing_seconds=0, ttl_seconds=10)
    svc = PhoneCodeService(redis, clock, sms, SECRET, policy=policy)
    code = await sent_code(svc, sms)
    assert (await svc.verify(USER, PHONE, wrong(code))).attempts_left == 1
    await sent_code(svc, sms)  # no cool-down
    clock.advance(seconds=10)
    assert (await svc.verify(USER, PHONE, sms.last_code(PHONE))).status == "expired"
    with pytest.raises(ValueError):
        CodePolicy(max_attempts=0)


async def test_works_on_fakeredis(clock: FixedClock, sms: ConsoleSms) -> None:
    fake = fakeredis.aioredis.FakeRedis(decode_responses=True)
    svc = PhoneCodeService(fake, clock, sms, SECRET)
    code = await sent_code(svc, sms)
    assert (await svc.send(USER, PHONE)).model_dump() == {"status": "cooldown", "retry_after": 60, "proven": False}
    assert (await svc.verify(USER, PHONE, "12 3")).status == "malformed"
    results = await asyncio.gather(*(svc.verify(USER, PHONE, wrong(code)) for _ in range(3)))
    assert sorted(r.attempts_left for r in results) == [2, 3, 4]
    assert (await svc.verify(USER, PHONE, code)).status == "ok"
    assert (await svc.verify(USER, PHONE, code)).status == "no_code"
    clock.advance(seconds=60)
    code = await sent_code(svc, sms)
    clock.advance(seconds=300)
    assert (await svc.verify(USER, PHONE, code)).status == "expired"
    await fake.aclose()
