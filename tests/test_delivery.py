"""Delivering a paid order to an enterprise (services.delivery): pure, no Redis."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from services.catalog import Cart, load_catalog, quote
from services.clock import add_years
from services.delivery import Conversion, DeliveryRefused, deliver
from services.enterprises import Enterprise
from services.orders import Channel, Order, OrderStatus

UTC = UTC
NOW = datetime(2026, 1, 5, 2, 0, tzinfo=UTC)
CATALOG = load_catalog()


def paid_order(edition="advanced", years=1, pack=None, *, order_id="o1", paid_at=NOW) -> Order:
    q = quote(CATALOG, Cart(edition=edition, years=years, pack=pack, pack_chosen=True))
    return Order(
        id=order_id, user_id=1, chat_id=1, channel=Channel.CHAT, status=OrderStatus.PAID,
        lines=q.lines, total_fen=q.total_fen, currency="CNY", edition=q.edition, years=q.years,
        pack=q.pack, contracts=q.contracts, created_at=paid_at, expires_at=paid_at + timedelta(minutes=30),
        paid_at=paid_at, charge_id="ch1",
    )


def enterprise(**fields) -> Enterprise:
    return Enterprise(id="ent_1", name="Acme", verified=True, **fields)


# --- add_years -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "years", "end"),
    [
        (datetime(2024, 2, 29, 8, 30, tzinfo=UTC), 1, datetime(2025, 2, 28, 8, 30, tzinfo=UTC)),
        (datetime(2024, 2, 29, 8, 30, tzinfo=UTC), 2, datetime(2026, 2, 28, 8, 30, tzinfo=UTC)),
        (datetime(2024, 2, 29, 8, 30, tzinfo=UTC), 3, datetime(2027, 2, 28, 8, 30, tzinfo=UTC)),
        (datetime(2024, 2, 29, 8, 30, tzinfo=UTC), 4, datetime(2028, 2, 29, 8, 30, tzinfo=UTC)),
        (datetime(2023, 2, 28, tzinfo=UTC), 1, datetime(2024, 2, 28, tzinfo=UTC)),
        (datetime(2026, 1, 5, 2, 0, tzinfo=UTC), 3, datetime(2029, 1, 5, 2, 0, tzinfo=UTC)),
        (datetime(2026, 12, 31, 23, 59, 59, 999, tzinfo=UTC), 1,
         datetime(2027, 12, 31, 23, 59, 59, 999, tzinfo=UTC)),
    ],
)
def test_add_years(start, years, end):
    assert add_years(start, years) == end


def test_add_years_keeps_the_timezone():
    cst = timezone(timedelta(hours=8))
    result = add_years(datetime(2024, 2, 29, 23, 0, tzinfo=cst), 1)
    assert result == datetime(2025, 2, 28, 23, 0, tzinfo=cst) and result.tzinfo is cst


# --- deliver -------------------------------------------------------------------------------


def test_first_delivery_to_an_experience_enterprise():
    ent = enterprise(contracts_left=5)
    deliver(ent, paid_order("advanced", 2, "pack_1k"), CATALOG, NOW)

    assert ent.edition == "advanced"
    assert ent.expires_at == datetime(2028, 1, 5, 2, 0, tzinfo=UTC)
    assert ent.contracts_left == 5 + 2 * 600 + 1_000
    assert ent.delivered_orders == ["o1"]


def test_same_edition_in_effect_adds_time_from_the_current_expiry():
    current_expiry = NOW + timedelta(days=100)
    ent = enterprise(edition="advanced", expires_at=current_expiry, contracts_left=300)
    deliver(ent, paid_order("advanced", 3), CATALOG, NOW)

    assert ent.edition == "advanced"
    assert ent.expires_at == add_years(current_expiry, 3)
    assert ent.contracts_left == 300 + 1_800


def test_same_edition_expired_starts_from_the_purchase():
    ent = enterprise(edition="advanced", expires_at=NOW - timedelta(days=1))
    deliver(ent, paid_order("advanced", 1), CATALOG, NOW)
    assert ent.expires_at == add_years(NOW, 1)


def test_an_upgrade_starts_from_the_purchase_keeps_contracts_and_converts_the_time_left():
    # R19: 200 days of 高级版 (¥4,800/yr) are worth 200 × 4,800 ÷ 59,800 = 16 days of 旗舰版.
    ent = enterprise(edition="advanced", expires_at=NOW + timedelta(days=200), contracts_left=400)
    conversion = deliver(ent, paid_order("flagship", 1, "pack_10k"), CATALOG, NOW)

    assert ent.edition == "flagship"
    assert ent.expires_at == add_years(NOW, 1) + timedelta(days=16)
    assert ent.contracts_left == 400 + 10_000 + 10_000
    assert conversion == Conversion("advanced", 200, 16)


def test_a_term_that_has_ended_delivers_nothing():
    ent = enterprise()
    with pytest.raises(DeliveryRefused) as refused:
        deliver(ent, paid_order("advanced", 1, paid_at=NOW - timedelta(days=400)), CATALOG, NOW)
    assert refused.value.reason == "term_over"
    assert (ent.edition, ent.expires_at, ent.contracts_left, ent.delivered_orders) == ("experience", None, 0, [])


def test_r13_time_runs_from_the_payment_not_from_the_binding():
    # R13: the edition takes effect and is billed from the purchase, bound or not.
    paid_at = NOW - timedelta(days=40)
    ent = enterprise()
    deliver(ent, paid_order("advanced", 1, paid_at=paid_at), CATALOG, NOW)
    assert ent.expires_at == add_years(paid_at, 1)


def test_same_edition_that_ran_out_after_the_payment_still_adds_up():
    # Paid while the current advanced term was running; bound after it ran out: no overlap.
    paid_at = NOW - timedelta(days=40)
    old_expiry = NOW - timedelta(days=10)
    ent = enterprise(edition="advanced", expires_at=old_expiry)
    deliver(ent, paid_order("advanced", 1, paid_at=paid_at), CATALOG, NOW)
    assert ent.expires_at == add_years(old_expiry, 1)


def test_a_downgrade_is_refused_and_nothing_changes():
    ent = enterprise(edition="flagship", expires_at=NOW + timedelta(days=1), contracts_left=9)
    before = ent.model_copy(deep=True)

    with pytest.raises(DeliveryRefused) as refused:
        deliver(ent, paid_order("advanced", 1), CATALOG, NOW)

    assert refused.value.reason == "downgrade"
    assert ent == before


def test_a_lower_edition_after_the_higher_one_expired_is_not_a_downgrade():
    ent = enterprise(edition="flagship", expires_at=NOW)  # expires exactly now: no longer in effect
    deliver(ent, paid_order("advanced", 1), CATALOG, NOW)
    assert ent.edition == "advanced" and ent.expires_at == add_years(NOW, 1)


def test_a_second_delivery_of_the_same_order_is_refused():
    ent = enterprise()
    order = paid_order("advanced", 1)
    deliver(ent, order, CATALOG, NOW)
    after_first = ent.model_copy(deep=True)

    with pytest.raises(DeliveryRefused) as refused:
        deliver(ent, order, CATALOG, NOW)

    assert refused.value.reason == "already_delivered"
    assert ent == after_first


def test_two_orders_add_up():
    ent = enterprise()
    deliver(ent, paid_order("advanced", 1, order_id="o1"), CATALOG, NOW)
    deliver(ent, paid_order("advanced", 2, "pack_1k", order_id="o2"), CATALOG, NOW)
    assert ent.expires_at == add_years(add_years(NOW, 1), 2)
    assert ent.contracts_left == 600 + 1_200 + 1_000
    assert ent.delivered_orders == ["o1", "o2"]


def test_an_unknown_edition_is_refused_and_nothing_changes():
    ent = enterprise()
    before = ent.model_copy(deep=True)
    order = paid_order("advanced", 1).model_copy(update={"edition": "platinum"})
    with pytest.raises(DeliveryRefused) as refused:
        deliver(ent, order, CATALOG, NOW)
    assert refused.value.reason == "unknown_edition"
    assert ent == before


def test_an_unpaid_order_delivered_directly_starts_now():
    # deliver() itself does not check the status (OrderService.bind does); without paid_at it uses now.
    ent = enterprise()
    order = paid_order("advanced", 1).model_copy(update={"paid_at": None, "status": OrderStatus.PENDING})
    deliver(ent, order, CATALOG, NOW)
    assert ent.expires_at == add_years(NOW, 1)
