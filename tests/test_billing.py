"""Pricing what an enterprise buys for itself (services.billing) and delivering it on payment
(services.orders, services.delivery): renewal (R4), upgrade (R4, R5), value-added services (F9).

The upgrade price table is written out by hand from the rule (docs/rules.md defaults):
price = ceil((new − current annual price) × days ÷ 365) fen; contracts = ceil((new − current
yearly quota) × days ÷ 365)."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.billing import (
    BillingRefused,
    ceil_div,
    days_left,
    new_edition_quote,
    renewal_quote,
    service_quote,
    upgradable_to,
    upgrade_quote,
)
from services.catalog import load_catalog
from services.clock import FixedClock
from services.enterprises import RedisEnterpriseDirectory, Role
from services.orders import Channel, OrderService, OrderStatus, UpgradeBasis

UTC = UTC
NOW = datetime(2026, 1, 5, 2, 0, tzinfo=UTC)
CATALOG = load_catalog()
ADMIN = "+8613800138000"


# --- the upgrade price: edition pairs × days left (R4, R5) ---------------------------------------

UPGRADE_TABLE = [
    # from, to, days left, price (fen), contracts
    ("advanced", "professional", 1, 4_110, 7),
    ("advanced", "professional", 30, 123_288, 198),
    ("advanced", "professional", 200, 821_918, 1_316),
    ("advanced", "professional", 365, 1_500_000, 2_400),
    ("advanced", "professional", 366, 1_504_110, 2_407),
    ("advanced", "professional", 730, 3_000_000, 4_800),
    ("advanced", "flagship", 1, 15_069, 26),
    ("advanced", "flagship", 30, 452_055, 773),
    ("advanced", "flagship", 200, 3_013_699, 5_151),
    ("advanced", "flagship", 365, 5_500_000, 9_400),
    ("advanced", "flagship", 366, 5_515_069, 9_426),
    ("advanced", "flagship", 730, 11_000_000, 18_800),
    ("professional", "flagship", 1, 10_959, 20),
    ("professional", "flagship", 30, 328_768, 576),
    ("professional", "flagship", 200, 2_191_781, 3_836),
    ("professional", "flagship", 365, 4_000_000, 7_000),
    ("professional", "flagship", 366, 4_010_959, 7_020),
    ("professional", "flagship", 730, 8_000_000, 14_000),
]


@pytest.mark.parametrize(("source", "target", "days", "price", "contracts"), UPGRADE_TABLE)
def test_R4_R5_upgrade_price_is_the_annual_difference_for_the_days_left_rounded_up(source, target, days, price, contracts):
    u = upgrade_quote(CATALOG, source, target, NOW + timedelta(days=days), NOW)
    assert (u.days_left, u.price_fen, u.contracts) == (days, price, contracts)
    assert u.expires_at == NOW + timedelta(days=days)  # the expiry stays
    assert u.annual_difference_fen == CATALOG.edition(target).price_per_year_fen - CATALOG.edition(source).price_per_year_fen
    # R4: 专业版 and 旗舰版 are never paid in chat (the web purchase link instead)
    assert u.chat_payable is False
    q = u.quote()
    assert (q.kind, q.total_fen, q.contracts, q.edition) == ("upgrade", price, contracts, target)
    assert [(line.kind, line.code, line.quantity, line.amount_fen) for line in q.lines] == [("upgrade", target, days, price)]


@pytest.mark.parametrize(("left", "days"), [
    (timedelta(seconds=1), 1),  # a started day counts as a day
    (timedelta(hours=23, minutes=59), 1),
    (timedelta(days=1), 1),
    (timedelta(days=1, seconds=1), 2),
    (timedelta(days=199, hours=12), 200),
    (timedelta(0), 0),
    (timedelta(days=-3), 0),
])
def test_R4_days_left_counts_a_started_day_as_a_whole_day(left, days):
    assert days_left(NOW + left, NOW) == days


def test_R4_a_fraction_of_a_fen_is_rounded_up_never_down():
    assert ceil_div(1, 365) == 1
    assert ceil_div(365, 365) == 1
    assert ceil_div(366, 365) == 2
    assert ceil_div(0, 365) == 0
    # one second left on an advanced → professional upgrade: a whole day is charged, ¥41.10
    assert upgrade_quote(CATALOG, "advanced", "professional", NOW + timedelta(seconds=1), NOW).price_fen == 4_110


@pytest.mark.parametrize(("source", "target", "reason"), [
    ("professional", "advanced", "downgrade"),
    ("flagship", "advanced", "downgrade"),
    ("flagship", "professional", "downgrade"),
    ("advanced", "advanced", "same_edition"),
    ("flagship", "flagship", "same_edition"),
    ("experience", "advanced", "from_free"),
    ("advanced", "experience", "unknown_edition"),  # 体验版 is never sold
    ("advanced", "platinum", "unknown_edition"),
])
def test_R5_no_downgrade_and_only_a_higher_edition_is_an_upgrade(source, target, reason):
    with pytest.raises(BillingRefused) as refused:
        upgrade_quote(CATALOG, source, target, NOW + timedelta(days=100), NOW)
    assert refused.value.reason == reason


def test_R4_an_edition_that_has_run_out_cannot_be_upgraded_prorated():
    with pytest.raises(BillingRefused, match="expired"):
        upgrade_quote(CATALOG, "advanced", "professional", NOW - timedelta(days=1), NOW)


@pytest.mark.parametrize(("source", "offered"), [
    ("experience", ["advanced", "professional", "flagship"]),
    ("advanced", ["professional", "flagship"]),
    ("professional", ["flagship"]),
    ("flagship", []),
])
def test_R5_only_higher_editions_are_offered(source, offered):
    assert [e.code for e in upgradable_to(CATALOG, source)] == offered


def test_R4_from_experience_an_upgrade_is_a_new_edition_at_the_list_price():
    q = new_edition_quote(CATALOG, "advanced", 2)
    assert (q.kind, q.total_fen, q.contracts, q.years, q.chat_payable) == ("edition", 960_000, 1_200, 2, True)
    assert new_edition_quote(CATALOG, "professional", 1).chat_payable is False  # R2


# --- renewal (R4, F7) ------------------------------------------------------------------------------


@pytest.mark.parametrize(("edition", "years", "total", "contracts", "chat"), [
    ("advanced", 1, 480_000, 600, True),
    ("advanced", 3, 1_440_000, 1_800, True),
    ("professional", 1, 1_980_000, 3_000, False),  # R2: never in chat
    ("flagship", 1, 5_980_000, 10_000, False),  # R2, and over the chat limit
])
def test_R4_renewal_is_the_list_price_per_year_with_the_yearly_quota(edition, years, total, contracts, chat):
    q = renewal_quote(CATALOG, edition, years)
    assert (q.kind, q.edition, q.years, q.total_fen, q.contracts, q.chat_payable) == (
        "renewal", edition, years, total, contracts, chat)


def test_R4_renewal_over_the_chat_limit_goes_to_the_web():
    cheap_limit = CATALOG.model_copy(update={"chat_payment_limit_fen": 500_000})
    assert renewal_quote(cheap_limit, "advanced", 1).chat_payable is True
    assert renewal_quote(cheap_limit, "advanced", 2).chat_payable is False


def test_R4_nothing_to_renew_on_experience_and_no_odd_durations():
    with pytest.raises(BillingRefused, match="nothing_to_renew"):
        renewal_quote(CATALOG, "experience", 1)
    with pytest.raises(BillingRefused, match="bad_years"):
        renewal_quote(CATALOG, "advanced", 4)


# --- value-added services (F9) -----------------------------------------------------------------------


@pytest.mark.parametrize(("service", "option", "years", "kind", "total", "contracts", "units"), [
    ("contract_pack", "pack_1k", None, "pack", 400_000, 1_000, 0),
    ("contract_pack", "pack_10k", None, "pack", 3_000_000, 10_000, 0),
    ("signing_report", "report_10", None, "report", 30_000, 0, 10),
    ("signing_report", "report_200", None, "report", 400_000, 0, 200),
    ("meeting_signing", None, 1, "service", 300_000, 0, 0),
    ("meeting_signing", None, 3, "service", 900_000, 0, 0),
    ("app_integration", None, 2, "service", 2_000_000, 0, 0),
])
def test_F9_value_added_services_are_priced_from_the_catalog(service, option, years, kind, total, contracts, units):
    q = service_quote(CATALOG, service, option, years, "advanced")
    assert (q.kind, q.total_fen, q.contracts, q.chat_payable) == ("service", total, contracts, True)
    assert (q.lines[0].kind, q.lines[0].units) == (kind, units)


@pytest.mark.parametrize(("service", "option", "years", "reason"), [
    ("contract_pack", "pack_5k", None, "unknown_option"),
    ("signing_report", None, None, "unknown_option"),
    ("meeting_signing", None, 5, "bad_years"),
    ("cloud_storage", None, 1, "unknown_service"),
])
def test_F9_unknown_options_are_refused(service, option, years, reason):
    with pytest.raises(BillingRefused) as refused:
        service_quote(CATALOG, service, option, years, "advanced")
    assert refused.value.reason == reason


# --- paying an enterprise's order delivers it at once (real Redis) ---------------------------------


@pytest.fixture
def clock():
    return FixedClock(NOW)


@pytest.fixture
def services(redis, clock):
    return OrderService(redis, clock, CATALOG), RedisEnterpriseDirectory(redis, clock)


async def seeded(directory, edition="advanced", days=200, contracts=500):
    ent = await directory.add("深圳示例科技有限公司", verified=True)
    await directory.add_member(ent.id, ADMIN, Role.SUPER_ADMIN)

    def mutate(e):
        e.edition, e.contracts_left = edition, contracts
        e.expires_at = NOW + timedelta(days=days) if edition != "experience" else None

    return await directory.update(ent.id, mutate)


async def place(orders, ent, q, upgrade=None, cart="c1"):
    order, created = await orders.create(user_id=1, chat_id=1, cart_id=cart, quote=q, channel=Channel.CHAT,
                                         phone=ADMIN, enterprise_name=ent.name, enterprise_id=ent.id, upgrade=upgrade)
    assert created and order.for_enterprise and order.status is OrderStatus.PENDING
    return order


async def test_R4_a_paid_renewal_is_delivered_at_once_and_moves_the_expiry(services):
    orders, directory = services
    ent = await seeded(directory)
    order = await place(orders, ent, renewal_quote(CATALOG, "advanced", 2))

    assert await orders.check_payable(order.id, user_id=1, amount_fen=960_000, currency="CNY") is None
    outcome = await orders.mark_paid(order.id, charge_id="ch1", amount_fen=960_000, currency="CNY", provider="telegram")

    assert outcome.status == "paid" and outcome.order.status is OrderStatus.BOUND  # no binding step
    after = await directory.get(ent.id)
    assert after.expires_at == datetime(2028, 7, 24, 2, 0, tzinfo=UTC)  # 200 days from now, + 2 years
    assert after.contracts_left == 500 + 1_200 and after.delivered_orders == [order.id]
    assert outcome.order.delivery.expires_at == after.expires_at
    # A repeated payment notice changes nothing.
    again = await orders.mark_paid(order.id, charge_id="ch1", amount_fen=960_000, currency="CNY", provider="telegram")
    assert again.status == "duplicate" and (await directory.get(ent.id)).contracts_left == 1_700


async def test_R4_a_paid_upgrade_changes_the_edition_at_once_and_keeps_the_expiry(services):
    orders, directory = services
    ent = await seeded(directory)
    u = upgrade_quote(CATALOG, "advanced", "professional", ent.expires_at, NOW)
    basis = UpgradeBasis(from_edition="advanced", expires_at=ent.expires_at, days_left=u.days_left)
    order = await place(orders, ent, u.quote(), basis)

    outcome = await orders.mark_paid(order.id, charge_id="w1", amount_fen=821_918, currency="CNY", provider="web")

    assert outcome.status == "paid"
    after = await directory.get(ent.id)
    assert (after.edition, after.expires_at, after.contracts_left) == ("professional", ent.expires_at, 500 + 1_316)


async def test_R4_an_upgrade_priced_before_a_renewal_is_refused_at_pre_checkout_and_refunded_if_paid(services):
    orders, directory = services
    ent = await seeded(directory)
    u = upgrade_quote(CATALOG, "advanced", "professional", ent.expires_at, NOW)
    upgrade = await place(orders, ent, u.quote(), UpgradeBasis(from_edition="advanced", expires_at=ent.expires_at,
                                                               days_left=u.days_left), cart="up")
    renewal = await place(orders, ent, renewal_quote(CATALOG, "advanced", 1), cart="re")
    await orders.mark_paid(renewal.id, charge_id="r1", amount_fen=480_000, currency="CNY", provider="telegram")

    # 专业版 is never paid in chat (R2); on the web, the expiry moved: the price is no longer right.
    assert await orders.check_payable(upgrade.id, user_id=1, amount_fen=821_918, currency="CNY") == "not_in_chat"
    outcome = await orders.mark_paid(upgrade.id, charge_id="w2", amount_fen=821_918, currency="CNY", provider="web")
    assert (outcome.status, outcome.reason) == ("refund_pending", "undeliverable")
    assert (await orders.get(upgrade.id)).status is OrderStatus.CANCELLED
    assert (await directory.get(ent.id)).edition == "advanced"
    assert [r["order_id"] for r in await orders.refunds()] == [upgrade.id]


async def test_R7_R8_a_service_no_longer_available_at_payment_is_not_delivered(services, clock):
    orders, directory = services
    ent = await seeded(directory)
    ent = await directory.update(ent.id, lambda e: setattr(e, "expires_at", NOW + timedelta(minutes=10)))
    order = await place(orders, ent, service_quote(CATALOG, "contract_pack", "pack_1k", None, "advanced"))
    clock.advance(minutes=11)  # the edition ran out: back on 体验版, where packs are not sold (R6, R7)
    assert await orders.check_payable(order.id, user_id=1, amount_fen=400_000, currency="CNY") == "changed"
    outcome = await orders.mark_paid(order.id, charge_id="p1", amount_fen=400_000, currency="CNY", provider="telegram")
    assert (outcome.status, outcome.reason) == ("refund_pending", "undeliverable")
    assert (await directory.get(ent.id)).contracts_left == 500


async def test_F9_paid_services_land_on_the_enterprise_account(services, clock):
    orders, directory = services
    ent = await seeded(directory, edition="professional")
    items = [
        ("contract_pack", "pack_10k", None, 3_000_000),
        ("signing_report", "report_50", None, 125_000),
        ("signing_report", "report_10", None, 30_000),
        ("meeting_signing", None, 1, 300_000),
        ("app_integration", None, 2, 2_000_000),
        ("app_integration", None, 1, 1_000_000),  # a second purchase runs on from the first's end
    ]
    for i, (service, option, years, total) in enumerate(items):
        order = await place(orders, ent, service_quote(CATALOG, service, option, years, "professional"), cart=f"s{i}")
        outcome = await orders.mark_paid(order.id, charge_id=f"c{i}", amount_fen=total, currency="CNY", provider="telegram")
        assert outcome.status == "paid", outcome
    after = await directory.get(ent.id)
    assert after.contracts_left == 500 + 10_000
    assert after.services == {"contract_pack": 10_000, "signing_report": 60}
    assert after.subscriptions == {"meeting_signing": datetime(2027, 1, 5, 2, 0, tzinfo=UTC),
                                   "app_integration": datetime(2029, 1, 5, 2, 0, tzinfo=UTC)}


async def test_a_member_without_billing_rights_cannot_pay_an_enterprise_order(services):
    orders, directory = services
    ent = await seeded(directory)
    order = await place(orders, ent, renewal_quote(CATALOG, "advanced", 1))
    await directory.add_member(ent.id, ADMIN, Role.MEMBER)  # demoted meanwhile
    assert await orders.check_payable(order.id, user_id=1, amount_fen=480_000, currency="CNY") == "changed"


async def test_unpaid_orders_are_indexed_and_expire_after_their_lifetime(services, clock):
    orders, directory = services
    ent = await seeded(directory)
    order = await place(orders, ent, renewal_quote(CATALOG, "advanced", 1))
    assert await orders.expire_due() == 0
    clock.advance(minutes=31)
    assert await orders.expire_due() == 1
    assert (await orders.get(order.id)).status is OrderStatus.EXPIRED
    assert await orders.expire_due() == 0  # once
