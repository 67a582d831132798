"""docs/reliability.md, row 5 (F12 web payments): `python -m bot reconcile` lists the orders whose state
differs between the web payment gateway (asked through its `query` API) and Redis. Real Redis;
the sandbox gateway keeps its payments there too, as a provider keeps them on its side."""
from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.cli.reconcile import _amain
from services.catalog import Cart, load_catalog, quote
from services.checkout import charge_id
from services.orders import Channel, OrderService, OrderStatus
from services.payment_gateway import PaymentRequest, SandboxGateway
from services.reconcile import Reconciler
from tests.conftest import TEST_REDIS_URL

ROOT = Path(__file__).resolve().parents[2]
CART = Cart(edition="advanced", years=1, pack=None, pack_chosen=True)
SECRET = b"local-development-only"  # the sandbox's secret when PAYMENT_NOTIFY_SECRET is unset


class Notices:
    """Where the sandbox posts its notices: they never reach the app (a lost notice)."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []

    async def __call__(self, url: str, body: bytes, headers: dict[str, str]) -> int:
        self.sent.append(body)
        return 200


@pytest.fixture
def world(redis, clock):
    catalog = load_catalog()
    notices = Notices()
    gateway = SandboxGateway(redis, clock, SECRET, pay_base_url="http://127.0.0.1:1", post=notices,
                             retry_delays=())
    return OrderService(redis, clock, catalog), gateway, catalog, notices


async def web_order(orders: OrderService, catalog, n: int, channel: Channel = Channel.WEB):
    order, _ = await orders.create(user_id=100 + n, chat_id=100 + n, cart_id=f"cart-{n}",
                                   quote=quote(catalog, CART), channel=channel)
    return order


async def open_payment(gateway: SandboxGateway, order):
    return await gateway.create_payment(PaymentRequest(
        order_id=order.id, amount_fen=order.total_fen, currency=order.currency, description="e-sign",
        notify_url="http://127.0.0.1:1/payments/notify/sandbox", return_url="http://127.0.0.1:1/back"))


async def apply_notice(orders: OrderService, gateway: SandboxGateway, payment_id: str) -> None:
    """What the notify endpoint does with a verified notice (services.checkout.apply_notice)."""
    payment = await gateway.get(payment_id)
    notice = gateway.verify_notice(*gateway.notice(payment))
    outcome = await orders.mark_paid(notice.order_id, charge_id=charge_id(gateway.name, notice.payment_id),
                                     amount_fen=notice.amount_fen, currency=notice.currency, provider=gateway.name)
    assert outcome.status == "paid"


async def three_orders(world):
    """lost: paid at the gateway, notice never arrived; fine: paid and applied; ghost: paid in
    Redis through the gateway, which has no payment for it. Plus a pending web order and a chat
    order paid by Telegram (neither differs)."""
    orders, gateway, catalog, notices = world
    lost, fine, ghost, pending = [await web_order(orders, catalog, n) for n in range(4)]
    session = await open_payment(gateway, lost)
    await gateway.pay(session.payment_id)
    await gateway.drain()
    assert notices.sent, "the sandbox sent its notice (and it was lost)"
    session = await open_payment(gateway, fine)
    await gateway.pay(session.payment_id)
    await gateway.drain()
    await apply_notice(orders, gateway, session.payment_id)
    outcome = await orders.mark_paid(ghost.id, charge_id=charge_id("sandbox", "sbx_never_made"),
                                     amount_fen=ghost.total_fen, currency=ghost.currency, provider="sandbox")
    assert outcome.status == "paid"
    await open_payment(gateway, pending)
    chat = await web_order(orders, catalog, 9, channel=Channel.CHAT)
    await orders.mark_paid(chat.id, charge_id="tg-charge-1", amount_fen=chat.total_fen, currency=chat.currency,
                           provider="telegram")
    return lost, fine, ghost, pending


async def test_F12_reconcile_reports_a_web_payment_whose_notice_never_arrived_and_a_payment_the_gateway_does_not_know(
        world, redis):
    _orders, gateway, _, _ = world
    lost, _fine, ghost, _pending = await three_orders(world)
    before = {k: await redis.dump(k) for k in await redis.keys("*")}

    report = await Reconciler(redis, gateway).run()

    found = {m.order_id: m for m in report.mismatches}
    assert set(found) == {lost.id, ghost.id}
    assert found[lost.id].problem == "paid_at_gateway_not_in_redis"
    assert (found[lost.id].redis_status, found[lost.id].gateway_status) == ("pending_payment", "paid")
    assert found[ghost.id].problem == "paid_in_redis_not_at_gateway"
    assert (found[ghost.id].redis_status, found[ghost.id].gateway_status) == ("paid", "unknown")
    assert report.checked == 4  # the four web orders; the chat order is not the gateway's
    assert not report.consistent
    # Read-only: nothing written, not even a lazy expiry.
    assert {k: await redis.dump(k) for k in await redis.keys("*")} == before


async def test_F12_reconcile_finds_nothing_when_gateway_and_redis_agree(world, redis):
    orders, gateway, catalog, _ = world
    order = await web_order(orders, catalog, 1)
    session = await open_payment(gateway, order)
    await gateway.pay(session.payment_id)
    await gateway.drain()

    assert [m.problem for m in (await Reconciler(redis, gateway).run()).mismatches] == \
        ["paid_at_gateway_not_in_redis"]  # before the notice is applied: this test can fail
    await apply_notice(orders, gateway, session.payment_id)

    report = await Reconciler(redis, gateway).run()
    assert report.consistent and report.checked == 1
    assert (await orders.get(order.id)).status is OrderStatus.PAID


async def test_F12_reconcile_command_prints_one_line_per_mismatch_and_exits_1(world, redis):
    lost, fine, ghost, _ = await three_orders(world)
    env = {**os.environ, "REDIS_URL": TEST_REDIS_URL}
    for name in ("WEB_GATEWAY", "PAYMENT_NOTIFY_SECRET", "ENVIRONMENT"):
        env.pop(name, None)
    done = await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "bot", "reconcile"], cwd=ROOT, env=env,
                                   capture_output=True, text=True, timeout=60)
    assert done.returncode == 1, done.stderr
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 3
    assert sorted(line.split()[0] for line in lines[:2]) == sorted([lost.id, ghost.id])
    assert lines[-1] == "4 web order(s) checked against gateway sandbox: 2 mismatch(es)"
    assert fine.id not in done.stdout


async def test_F12_reconcile_command_exits_0_when_consistent_and_2_when_redis_does_not_answer(world, redis, capsys):
    _, gateway, _, _ = world
    assert await _amain(TEST_REDIS_URL, make_gateway=lambda client: gateway) == 0
    assert capsys.readouterr().out.strip() == "0 web order(s) checked against gateway sandbox: 0 mismatch(es)"
    assert await _amain("redis://127.0.0.1:1/0", make_gateway=lambda client: gateway) == 2
    assert "does not answer" in capsys.readouterr().err
