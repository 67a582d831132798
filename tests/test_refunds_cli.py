"""`python -m bot refunds list` as the operator runs it: every payment kept for a refund (R21)
is seen, even without a staff group."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from services import keys
from services.catalog import load_catalog
from services.clock import FixedClock
from services.orders import OrderService, refund_case_id
from services.refunds import RefundState
from tests.conftest import TEST_REDIS_URL

ROOT = Path(__file__).resolve().parent.parent


def refunds(*args: str, url: str = TEST_REDIS_URL) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bot", "refunds", *args], cwd=ROOT,
                          env={**os.environ, "REDIS_URL": url}, capture_output=True, text=True, timeout=30)


async def test_refunds_list_shows_each_payment_kept_for_a_refund(redis):
    orders = OrderService(redis, FixedClock(), load_catalog())
    await orders.mark_paid("onosuchorder1", charge_id="tg-lost", amount_fen=480_000, currency="CNY",
                           provider="telegram")

    listed = refunds("list")

    assert listed.returncode == 0, listed.stderr
    [line, summary] = listed.stdout.splitlines()
    assert line.startswith("rf_") and "order onosuchorder1" in line and "¥4,800.00 CNY" in line
    assert "via telegram" in line and "charge tg-lost" in line and "reason unknown_order" in line
    assert summary == "1 payment(s) kept for a refund"


def test_refunds_with_redis_down_is_one_line_and_exit_2():
    listed = refunds("list", url="redis://127.0.0.1:1/0")
    assert listed.returncode == 2 and listed.stderr.count("\n") == 1 and "does not answer" in listed.stderr


async def test_refunds_done_records_a_refund_made_by_hand_once(redis):
    orders = OrderService(redis, FixedClock(), load_catalog())
    await orders.mark_paid("onosuchorder2", charge_id="tg-by-hand", amount_fen=480_000, currency="CNY",
                           provider="telegram")
    case_id = refund_case_id("tg-by-hand")

    without_note = refunds("done", case_id)
    done = refunds("done", case_id, "--note", "refunded in the provider's dashboard, ref 778")
    again = refunds("done", case_id, "--note", "once more")
    unknown = refunds("done", "rf_000000000000", "--note", "x")
    listed = refunds("list", "--open")

    assert without_note.returncode == 2 and "--note" in without_note.stderr
    assert done.returncode == 0, done.stderr
    assert f"Refund case {case_id} recorded as refunded by hand" in done.stdout and "ref 778" in done.stdout
    assert "the buyer was not told: BOT_TOKEN is not set" in done.stdout
    assert again.returncode == 0 and "nothing recorded twice" in again.stdout and "ref 778" in again.stdout
    assert unknown.returncode == 2 and "no refund case rf_000000000000" in unknown.stderr
    assert listed.stdout.splitlines() == ["0 payment(s) kept for a refund"]
    state = RefundState.model_validate_json(await redis.get(keys.refund_state(case_id)))
    assert (state.status, state.by, state.provider_status) == ("refunded", "cli", "by_hand")
