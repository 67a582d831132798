"""services.refunds on the sandbox gateway (the local runs' rail) and a real Redis: a case is
refunded once however many ask at once, a provider that cannot be reached leaves it pending for a
retry with the same refund id, a claim left by a dead process is taken over, and what no rail can
refund is said so."""
from __future__ import annotations

import asyncio

import pytest

from services.catalog import Cart, load_catalog, quote
from services.checkout import charge_id
from services.orders import Channel, OrderService, refund_case_id
from services.payment_gateway import PaymentRequest, SandboxGateway
from services.payment_refunds import ProviderError
from services.refunds import CLAIM_SECONDS, RefundService


class Unreachable:
    """A gateway whose refund API does not answer, then does (the sandbox behind it)."""

    name = "sandbox"

    def __init__(self, sandbox: SandboxGateway, failures: int) -> None:
        self.sandbox, self.failures, self.calls = sandbox, failures, 0

    async def refund(self, **kwargs):
        self.calls += 1
        if self.failures:
            self.failures -= 1
            raise ProviderError("unreachable", "timeout")
        return await self.sandbox.refund(**kwargs)


@pytest.fixture
async def case(redis, clock):
    """A sandbox payment for an order cancelled before it arrived: a refund case."""
    orders = OrderService(redis, clock, load_catalog())
    sandbox = SandboxGateway(redis, clock, b"secret", pay_base_url="http://127.0.0.1:1", post=_accept, retry_delays=())
    order, _ = await orders.create(user_id=7, chat_id=7, cart_id="c1", channel=Channel.WEB,
                                   quote=quote(load_catalog(), Cart(edition="advanced", years=1, pack_chosen=True)))
    session = await sandbox.create_payment(PaymentRequest(order_id=order.id, amount_fen=order.total_fen, currency="CNY",
                                                          description="x", notify_url="http://127.0.0.1:1/n",
                                                          return_url="http://127.0.0.1:1/r"))
    await orders.cancel(order.id, user_id=7)
    await sandbox.pay(session.payment_id)
    outcome = await orders.mark_paid(order.id, charge_id=charge_id("sandbox", session.payment_id), amount_fen=480_000,
                                     currency="CNY", provider="sandbox")
    assert outcome.status == "refund_pending"
    return sandbox, refund_case_id(charge_id("sandbox", session.payment_id))


async def _accept(url, body, headers) -> int:
    return 200


async def test_five_asking_at_once_make_one_refund(redis, clock, case):
    sandbox, case_id = case
    service = RefundService(redis, clock, {"sandbox": sandbox})

    outcomes = await asyncio.gather(*(service.refund(case_id, by=f"agent:{n}") for n in range(5)))

    assert sorted(o.status for o in outcomes) == ["already"] * 4 + ["refunded"]
    assert [o.called for o in outcomes].count(True) == 1
    refunded = await service.case(case_id)
    assert refunded.state.status == "refunded" and refunded.state.refunded_fen == 480_000
    assert (await sandbox.query_refund(order_id=refunded.order_id, refund_id=case_id)).amount_fen == 480_000
    assert await service.open_cases() == []


async def test_an_unreachable_provider_leaves_the_case_pending_and_a_retry_refunds_it_once(redis, clock, case):
    sandbox, case_id = case
    flaky = Unreachable(sandbox, failures=1)
    service = RefundService(redis, clock, {"sandbox": flaky})

    first = await service.refund(case_id, by="cli")
    assert first.status == "retry" and (await service.case(case_id)).state.status == "pending"
    second = await service.refund(case_id, by="cli")

    assert second.status == "refunded" and flaky.calls == 2


async def test_a_claim_left_by_a_dead_process_is_taken_over_later(redis, clock, case):
    sandbox, case_id = case
    service = RefundService(redis, clock, {"sandbox": sandbox})
    claimed, _ = await service._claim(case_id, "agent:1")  # the process died right after claiming
    assert claimed
    assert (await service.refund(case_id, by="agent:2")).status == "already"

    clock.advance(seconds=CLAIM_SECONDS + 1)

    assert (await service.refund(case_id, by="agent:2")).status == "refunded"


async def test_more_than_was_paid_and_an_unknown_case_are_refused(redis, clock, case):
    sandbox, case_id = case
    service = RefundService(redis, clock, {"sandbox": sandbox})
    assert (await service.refund(case_id, by="cli", amount_fen=480_001)).problem == "amount"
    assert (await service.refund("rf_000000000000", by="cli")).status == "unknown"
    assert (await RefundService(redis, clock, {}).refund(case_id, by="cli")).status == "no_rail"
    assert (await service.case(case_id)).state.status == "pending"


async def test_a_refund_done_by_hand_is_recorded_once_and_no_rail_pays_it_again(redis, clock, case):
    sandbox, case_id = case
    service = RefundService(redis, clock, {"sandbox": sandbox})

    marks = await asyncio.gather(*(service.mark_done(case_id, by=f"agent:{n}", note=f"转账 {n}") for n in range(3)))

    assert sorted(m.status for m in marks) == ["already", "already", "marked"]
    first = next(m for m in marks if m.status == "marked")
    case_now = await service.case(case_id)
    assert case_now.state.status == "refunded" and case_now.state.provider_status == "by_hand"
    assert (case_now.state.by, case_now.state.note) == (first.case.state.by, first.case.state.note)
    assert case_now.state.refunded_at == clock.now() and case_now.state.refunded_fen == 480_000
    assert (await service.refund(case_id, by="agent:9")).status == "already"
    assert await sandbox.query_refund(order_id=case_now.order_id, refund_id=case_id) is None  # never paid twice
    assert await service.open_cases() == []


async def test_a_refund_by_hand_needs_a_note_and_waits_for_a_rail_at_work(redis, clock, case):
    sandbox, case_id = case
    service = RefundService(redis, clock, {"sandbox": sandbox})
    assert (await service.mark_done(case_id, by="cli", note="   ")).problem == "note"
    assert (await service.mark_done("rf_000000000000", by="cli", note="x")).status == "unknown"
    await service._claim(case_id, "agent:1")  # a rail is being asked right now

    busy = await service.mark_done(case_id, by="cli", note="转账")

    assert busy.status == "busy" and (await service.case(case_id)).state.status == "refunding"
