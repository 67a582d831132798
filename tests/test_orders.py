"""Orders (services.orders) on a real Redis: creation, payment, binding, expiry, cancellation."""
from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import pytest

from services import keys
from services.catalog import Cart, load_catalog, quote
from services.clock import add_years
from services.enterprises import RedisEnterpriseDirectory, Role
from services.orders import Channel, Order, OrderService, OrderStatus, refund_record

BUYER = 1001
OTHER_USER = 2002
PHONE = "+8613800138000"
STRANGER_PHONE = "+8613900139000"
ADVANCED_1Y = Cart(edition="advanced", years=1, pack=None, pack_chosen=True)
ADVANCED_1Y_PRICE = 480_000


@pytest.fixture
def catalog():
    return load_catalog()


@pytest.fixture
def orders(redis, clock, catalog) -> OrderService:
    return OrderService(redis, clock, catalog)


@pytest.fixture
def directory(redis, clock) -> RedisEnterpriseDirectory:
    return RedisEnterpriseDirectory(redis, clock)


class _SlowPipeline:
    """A pipeline whose EXEC arrives late, so that concurrent callers overlap for real."""

    def __init__(self, pipe) -> None:
        self._pipe = pipe

    async def __aenter__(self):
        await self._pipe.__aenter__()
        return self

    async def __aexit__(self, *exc):
        return await self._pipe.__aexit__(*exc)

    def __getattr__(self, name):
        return getattr(self._pipe, name)

    async def execute(self, *args, **kwargs):
        await asyncio.sleep(0.02)
        return await self._pipe.execute(*args, **kwargs)


class _SlowRedis:
    def __init__(self, redis) -> None:
        self._redis = redis

    def __getattr__(self, name):
        return getattr(self._redis, name)

    def pipeline(self, *args, **kwargs):
        return _SlowPipeline(self._redis.pipeline(*args, **kwargs))


@pytest.fixture(params=["direct", "slow"])
def racing_orders(request, redis, clock, catalog) -> OrderService:
    """An OrderService for races: on Redis as it is, and with every EXEC delayed."""
    return OrderService(redis if request.param == "direct" else _SlowRedis(redis), clock, catalog)


_cart_ids = iter(range(10**9))


async def new_order(orders, catalog, cart: Cart = ADVANCED_1Y, *, user_id=BUYER, cart_id=None,
                    channel=Channel.CHAT) -> Order:
    order, created = await orders.create(
        user_id=user_id, chat_id=user_id, cart_id=cart_id or f"cart-{next(_cart_ids)}",
        quote=quote(catalog, cart), channel=channel, phone=PHONE, enterprise_name="某某科技",
    )
    assert created
    return order


async def pay(orders, order: Order, charge_id="ch-1", amount=None, currency="CNY"):
    return await orders.mark_paid(order.id, charge_id=charge_id,
                                  amount_fen=order.total_fen if amount is None else amount,
                                  currency=currency, provider="telegram")


async def paid_order(orders, catalog, cart: Cart = ADVANCED_1Y, **kw) -> Order:
    order = await new_order(orders, catalog, cart, **kw)
    outcome = await pay(orders, order, charge_id=f"ch-{order.id}")
    assert outcome.status == "paid"
    return outcome.order


async def verified_enterprise(directory, name="Acme", *, phone=PHONE, verified=True):
    ent = await directory.add(name, verified=verified)
    return await directory.add_member(ent.id, phone, Role.SUPER_ADMIN)


async def snapshot(redis) -> dict:
    """Every key of the test database with its type and value, to show nothing was written."""
    found = {}
    for key in sorted([k async for k in redis.scan_iter()]):
        kind = await redis.type(key)
        if kind == "string":
            value = await redis.get(key)
        elif kind == "list":
            value = await redis.lrange(key, 0, -1)
        elif kind == "set":
            value = sorted(await redis.smembers(key))
        elif kind == "zset":
            value = await redis.zrange(key, 0, -1, withscores=True)
        elif kind == "hash":
            value = await redis.hgetall(key)
        else:
            raise AssertionError(f"unexpected type {kind} for {key}")
        found[key] = (kind, value)
    return found


async def stored(redis, order_id) -> Order:
    return Order.model_validate_json(await redis.get(keys.order(order_id)))


# --- create --------------------------------------------------------------------------------


async def test_create_stores_a_pending_order(orders, catalog, redis, clock):
    cart = Cart(edition="advanced", years=2, pack="pack_1k", pack_chosen=True)
    order, created = await orders.create(user_id=BUYER, chat_id=555, cart_id="c1",
                                         quote=quote(catalog, cart), phone=PHONE,
                                         enterprise_name="某某科技")
    assert created
    assert order.id.startswith("o") and len(order.id) == 13
    assert order.status is OrderStatus.PENDING and order.channel is Channel.CHAT
    assert (order.user_id, order.chat_id, order.phone, order.enterprise_name) == (BUYER, 555, PHONE, "某某科技")
    assert (order.edition, order.years, order.pack) == ("advanced", 2, "pack_1k")
    assert order.total_fen == 960_000 + 400_000 and order.currency == "CNY"
    assert order.contracts == 1_200 + 1_000
    assert [(line.code, line.amount_fen) for line in order.lines] == [("advanced", 960_000), ("pack_1k", 400_000)]
    assert order.created_at == clock.now()
    assert order.expires_at == clock.now() + timedelta(minutes=30)
    assert [(e.kind, e.at) for e in order.events] == [("created", clock.now())]
    assert order.enterprise_id is None and order.paid_at is None

    assert await stored(redis, order.id) == order
    assert await redis.get(keys.cart_order("c1")) == order.id
    assert await redis.zrange(keys.user_orders(BUYER), 0, -1) == [order.id]
    assert await orders.get(order.id) == order


async def test_create_is_idempotent_per_cart(orders, catalog, redis, clock):
    first, created_first = await orders.create(user_id=BUYER, chat_id=BUYER, cart_id="c1",
                                               quote=quote(catalog, ADVANCED_1Y))
    clock.advance(seconds=5)
    other_quote = quote(catalog, Cart(edition="advanced", years=3, pack_chosen=True))
    second, created_second = await orders.create(user_id=BUYER, chat_id=BUYER, cart_id="c1",
                                                 quote=other_quote)

    assert (created_first, created_second) == (True, False)
    assert second == first
    assert second.years == 1  # the first submission is the order; the later one changed nothing
    assert [o.id for o in await orders.list_for_user(BUYER)] == [first.id]
    assert [k async for k in redis.scan_iter(match=keys.order("*"))] == [keys.order(first.id)]


async def test_different_carts_make_different_orders(orders, catalog):
    a = await new_order(orders, catalog, cart_id="c1")
    b = await new_order(orders, catalog, cart_id="c2")
    assert a.id != b.id
    assert {o.id for o in await orders.list_for_user(BUYER)} == {a.id, b.id}


async def test_concurrent_creates_for_one_cart_make_one_order(racing_orders, catalog, redis):
    orders = racing_orders
    q = quote(catalog, ADVANCED_1Y)
    results = await asyncio.gather(*(
        orders.create(user_id=BUYER, chat_id=BUYER, cart_id="c-double-tap", quote=q)
        for _ in range(10)
    ))

    # The cart's claim and its order become visible together (slow: EXECs arrive late), so a
    # create that sees the claim never finds the order missing and writes one of its own.
    assert len({order.id for order, _ in results}) == 1
    assert sum(created for _, created in results) == 1
    assert len(await orders.list_for_user(BUYER)) == 1
    assert await redis.zcard(keys.user_orders(BUYER)) == 1
    assert len([k async for k in redis.scan_iter(match=keys.order("*"))]) == 1
    assert await redis.get(keys.cart_order("c-double-tap")) == results[0][0].id


async def test_create_returns_the_existing_order_lazily_expired(orders, catalog, clock):
    first = await new_order(orders, catalog, cart_id="c1")
    clock.advance(hours=1)
    again, created = await orders.create(user_id=BUYER, chat_id=BUYER, cart_id="c1",
                                         quote=quote(catalog, ADVANCED_1Y))
    assert not created and again.id == first.id and again.status is OrderStatus.EXPIRED


# --- get, list -----------------------------------------------------------------------------


async def test_get_unknown_is_none(orders):
    assert await orders.get("o000000000000") is None


async def test_get_expires_an_overdue_pending_order_lazily(orders, catalog, redis, clock):
    order = await new_order(orders, catalog)
    clock.advance(minutes=29, seconds=59)
    assert (await orders.get(order.id)).status is OrderStatus.PENDING
    assert (await stored(redis, order.id)).status is OrderStatus.PENDING

    clock.advance(seconds=1)  # exactly the TTL
    got = await orders.get(order.id)

    assert got.status is OrderStatus.EXPIRED
    assert [(e.kind, e.at) for e in got.events][-1] == ("expired", clock.now())
    assert await stored(redis, order.id) == got  # written, not only shown
    clock.advance(minutes=5)
    assert await orders.get(order.id) == got  # expired once


async def test_list_for_user_is_newest_first_and_limited(orders, catalog, clock):
    made = []
    for _ in range(4):
        made.append(await new_order(orders, catalog))
        clock.advance(minutes=1)
    await new_order(orders, catalog, user_id=OTHER_USER)

    listed = await orders.list_for_user(BUYER)
    assert [o.id for o in listed] == [o.id for o in reversed(made)]
    assert [o.id for o in await orders.list_for_user(BUYER, limit=2)] == [made[3].id, made[2].id]
    assert await orders.list_for_user(3003) == []


async def test_list_for_user_expires_overdue_orders(orders, catalog, redis, clock):
    order = await new_order(orders, catalog)
    clock.advance(minutes=31)
    (listed,) = await orders.list_for_user(BUYER)
    assert listed.status is OrderStatus.EXPIRED
    assert (await stored(redis, order.id)).status is OrderStatus.EXPIRED


# --- check_payable -------------------------------------------------------------------------


async def test_check_payable_ok(orders, catalog):
    order = await new_order(orders, catalog)
    assert await orders.check_payable(order.id, user_id=BUYER, amount_fen=ADVANCED_1Y_PRICE,
                                      currency="CNY") is None


async def test_check_payable_reasons(orders, catalog, clock):
    def check(order_id, *, user_id=BUYER, amount=ADVANCED_1Y_PRICE, currency="CNY"):
        return orders.check_payable(order_id, user_id=user_id, amount_fen=amount, currency=currency)

    pending = await new_order(orders, catalog)
    assert await check("o-missing") == "unknown"
    assert await check(pending.id, user_id=OTHER_USER) == "not_yours"
    assert await check(pending.id, amount=ADVANCED_1Y_PRICE - 1) == "mismatch"
    assert await check(pending.id, amount=ADVANCED_1Y_PRICE * 2) == "mismatch"
    assert await check(pending.id, currency="USD") == "mismatch"

    cancelled = await new_order(orders, catalog)
    await orders.cancel(cancelled.id, user_id=BUYER)
    assert await check(cancelled.id) == "cancelled"

    paid = await paid_order(orders, catalog)
    assert await check(paid.id) == "already_paid"

    clock.advance(minutes=30)
    assert await check(pending.id) == "expired"
    assert await check(paid.id) == "already_paid"  # a paid order never expires


# --- mark_paid -----------------------------------------------------------------------------


async def test_mark_paid_pays_once(orders, catalog, redis, clock):
    order = await new_order(orders, catalog)
    clock.advance(minutes=3)
    outcome = await pay(orders, order, charge_id="ch-1")

    assert outcome.status == "paid"
    paid = outcome.order
    assert paid.status is OrderStatus.PAID
    assert paid.paid_at == clock.now() and paid.charge_id == "ch-1"
    assert [(e.kind, e.at) for e in paid.events] == [("created", clock.now() - timedelta(minutes=3)),
                                                    ("paid", clock.now())]
    assert paid.events[-1].detail == {"charge_id": "ch-1", "amount_fen": ADVANCED_1Y_PRICE,
                                      "currency": "CNY", "provider": "telegram"}
    assert await stored(redis, order.id) == paid
    assert await redis.get(keys.charge("ch-1")) == order.id
    assert await orders.refunds() == []

    clock.advance(minutes=1)
    replay = await pay(orders, order, charge_id="ch-1")
    assert replay.status == "duplicate"
    assert await stored(redis, order.id) == paid  # no second event
    assert await orders.refunds() == []


async def test_concurrent_replays_pay_exactly_once(racing_orders, catalog, redis):
    orders = racing_orders
    order = await new_order(orders, catalog)
    outcomes = await asyncio.gather(*(pay(orders, order, charge_id="ch-1") for _ in range(10)))

    assert sorted(o.status for o in outcomes) == ["duplicate"] * 9 + ["paid"]
    final = await stored(redis, order.id)
    assert [e.kind for e in final.events] == ["created", "paid"]
    assert await orders.refunds() == []


async def test_concurrent_different_charges_pay_once_and_keep_the_rest_for_refund(racing_orders, catalog, redis):
    orders = racing_orders
    order = await new_order(orders, catalog)
    outcomes = await asyncio.gather(*(pay(orders, order, charge_id=f"ch-{i}") for i in range(10)))

    statuses = sorted(o.status for o in outcomes)
    assert statuses == ["paid"] + ["refund_pending"] * 9
    final = await stored(redis, order.id)
    assert final.status is OrderStatus.PAID
    refunds = await orders.refunds()
    assert len(refunds) == 9
    assert {r["charge_id"] for r in refunds} | {final.charge_id} == {f"ch-{i}" for i in range(10)}
    assert {r["reason"] for r in refunds} == {"already_paid"}
    assert [e.kind for e in final.events].count("refund_pending") == 9


async def test_payment_for_an_expired_order_is_kept_for_refund(orders, catalog, redis, clock):
    order = await new_order(orders, catalog)
    clock.advance(minutes=45)
    outcome = await pay(orders, order, charge_id="ch-late")

    assert (outcome.status, outcome.reason) == ("refund_pending", "expired")
    final = await stored(redis, order.id)
    assert final.status is OrderStatus.EXPIRED and final.paid_at is None and final.charge_id is None
    assert [(e.kind, e.at) for e in final.events][1:] == [("expired", clock.now()),
                                                         ("refund_pending", clock.now())]
    assert final.events[-1].detail["charge_id"] == "ch-late"
    assert final.events[-1].detail["reason"] == "expired"
    assert await orders.refunds() == [{
        "id": refund_record({"charge_id": "ch-late"}, order.id, "", clock.now())["id"],
        "charge_id": "ch-late", "amount_fen": ADVANCED_1Y_PRICE, "currency": "CNY",
        "provider": "telegram", "order_id": order.id, "reason": "expired",
        "at": clock.now().isoformat(),
    }]

    replay = await pay(orders, order, charge_id="ch-late")
    assert replay.status == "duplicate"
    assert len(await orders.refunds()) == 1
    assert len((await stored(redis, order.id)).events) == len(final.events)


async def test_payment_for_an_order_already_expired_by_get(orders, catalog, redis, clock):
    order = await new_order(orders, catalog)
    clock.advance(minutes=45)
    await orders.get(order.id)  # expired lazily first
    outcome = await pay(orders, order, charge_id="ch-late")
    assert (outcome.status, outcome.reason) == ("refund_pending", "expired")
    assert [e.kind for e in (await stored(redis, order.id)).events] == ["created", "expired", "refund_pending"]
    assert [r["reason"] for r in await orders.refunds()] == ["expired"]


async def test_payment_for_a_cancelled_order_is_kept_for_refund(orders, catalog, redis):
    order = await new_order(orders, catalog)
    await orders.cancel(order.id, user_id=BUYER)
    outcome = await pay(orders, order, charge_id="ch-2")

    assert (outcome.status, outcome.reason) == ("refund_pending", "cancelled")
    final = await stored(redis, order.id)
    assert final.status is OrderStatus.CANCELLED
    assert [e.kind for e in final.events] == ["created", "cancelled", "refund_pending"]
    assert [(r["charge_id"], r["reason"]) for r in await orders.refunds()] == [("ch-2", "cancelled")]


@pytest.mark.parametrize("bound", [False, True])
async def test_a_second_payment_of_a_paid_order_is_kept_for_refund(orders, catalog, directory, redis, bound):
    order = await paid_order(orders, catalog)
    if bound:
        ent = await verified_enterprise(directory)
        assert (await orders.bind(order.id, user_id=BUYER, enterprise_id=ent.id, phone=PHONE)).status == "bound"
    outcome = await pay(orders, order, charge_id="ch-second")

    assert (outcome.status, outcome.reason) == ("refund_pending", "already_paid")
    final = await stored(redis, order.id)
    assert final.status is (OrderStatus.BOUND if bound else OrderStatus.PAID)
    assert final.charge_id == f"ch-{order.id}"  # the first payment stays the order's
    assert final.events[-1].kind == "refund_pending"
    assert [e.kind for e in final.events].count("paid") == 1
    assert [(r["charge_id"], r["reason"]) for r in await orders.refunds()] == [("ch-second", "already_paid")]


async def test_a_payment_for_an_unknown_order_is_kept_for_refund(orders, redis):
    outcome = await orders.mark_paid("o-nowhere", charge_id="ch-x", amount_fen=100, currency="CNY",
                                     provider="telegram")
    assert outcome.status == "unknown_order" and outcome.order is None
    (refund,) = await orders.refunds()
    assert (refund["order_id"], refund["charge_id"], refund["amount_fen"], refund["reason"]) == (
        "o-nowhere", "ch-x", 100, "unknown_order")
    assert await redis.get(keys.order("o-nowhere")) is None

    again = await orders.mark_paid("o-nowhere", charge_id="ch-x", amount_fen=100, currency="CNY",
                                   provider="telegram")
    assert again.status == "duplicate"
    assert len(await orders.refunds()) == 1


@pytest.mark.parametrize(("amount", "currency"), [(ADVANCED_1Y_PRICE - 100, "CNY"),
                                                  (ADVANCED_1Y_PRICE + 1, "CNY"),
                                                  (ADVANCED_1Y_PRICE, "USD")])
async def test_a_wrong_amount_or_currency_is_kept_for_refund(orders, catalog, redis, amount, currency):
    order = await new_order(orders, catalog)
    outcome = await pay(orders, order, charge_id="ch-odd", amount=amount, currency=currency)

    assert (outcome.status, outcome.reason) == ("refund_pending", "mismatch")
    final = await stored(redis, order.id)
    assert final.status is OrderStatus.PENDING and final.paid_at is None
    assert final.events[-1].kind == "refund_pending"
    assert [(r["amount_fen"], r["currency"], r["reason"]) for r in await orders.refunds()] == [
        (amount, currency, "mismatch")]

    # The order can still be paid with the right amount.
    assert (await pay(orders, order, charge_id="ch-right")).status == "paid"


async def test_every_event_has_the_clock_time(orders, catalog, directory, redis, clock):
    ent = await verified_enterprise(directory)
    order = await new_order(orders, catalog)
    times = [clock.now()]
    clock.advance(minutes=2)
    await pay(orders, order, charge_id="ch-bad", amount=1)
    times.append(clock.now())
    clock.advance(minutes=2)
    await pay(orders, order, charge_id="ch-good")
    times.append(clock.now())
    clock.advance(hours=5)
    await orders.bind(order.id, user_id=BUYER, enterprise_id=ent.id, phone=PHONE)
    times.append(clock.now())

    final = await stored(redis, order.id)
    assert [(e.kind, e.at) for e in final.events] == list(zip(
        ["created", "refund_pending", "paid", "bound"], times, strict=True))
    assert final.bound_at == times[-1]


# --- bind ----------------------------------------------------------------------------------


async def test_bind_delivers_once(orders, catalog, directory, redis, clock):
    ent = await verified_enterprise(directory)
    cart = Cart(edition="advanced", years=2, pack="pack_1k", pack_chosen=True)
    order = await paid_order(orders, catalog, cart)

    outcome = await orders.bind(order.id, user_id=BUYER, enterprise_id=ent.id, phone=PHONE)

    assert outcome.status == "bound"
    assert outcome.order.status is OrderStatus.BOUND
    assert outcome.order.enterprise_id == ent.id and outcome.order.bound_at == clock.now()
    delivered = await directory.get(ent.id)
    assert outcome.enterprise == delivered
    assert delivered.edition == "advanced"
    assert delivered.expires_at == add_years(clock.now(), 2)
    assert delivered.contracts_left == 2 * 600 + 1_000
    assert delivered.delivered_orders == [order.id]
    assert await stored(redis, order.id) == outcome.order

    before = await snapshot(redis)
    again = await orders.bind(order.id, user_id=BUYER, enterprise_id=ent.id, phone=PHONE)
    assert again.status == "already_bound"
    assert await snapshot(redis) == before


async def test_bind_extends_the_same_edition_from_its_current_expiry(orders, catalog, directory, clock):
    ent = await verified_enterprise(directory)
    current_expiry = clock.now() + timedelta(days=90)

    def on_advanced(e):
        e.edition, e.expires_at, e.contracts_left = "advanced", current_expiry, 77

    await directory.update(ent.id, on_advanced)
    order = await paid_order(orders, catalog, Cart(edition="advanced", years=3, pack="pack_10k", pack_chosen=True))

    outcome = await orders.bind(order.id, user_id=BUYER, enterprise_id=ent.id, phone=PHONE)

    assert outcome.status == "bound"
    assert outcome.enterprise.expires_at == add_years(current_expiry, 3)
    assert outcome.enterprise.contracts_left == 77 + 3 * 600 + 10_000


async def test_bind_of_a_higher_edition_converts_what_is_left_of_the_lower_one(orders, catalog, directory, clock):
    # R19: the 90 days left of 高级版 (¥4,800/yr) are worth 90 × 4,800 ÷ 59,800 = 7 days of 旗舰版.
    ent = await verified_enterprise(directory)
    await directory.update(ent.id, lambda e: setattr(e, "edition", "advanced") or setattr(
        e, "expires_at", clock.now() + timedelta(days=90)))
    order = await paid_order(orders, catalog, Cart(edition="flagship", years=1, pack_chosen=True),
                             channel=Channel.CONSULTATION)
    outcome = await orders.bind(order.id, user_id=BUYER, enterprise_id=ent.id, phone=PHONE)
    assert outcome.status == "bound"
    assert outcome.enterprise.edition == "flagship"
    assert outcome.enterprise.expires_at == add_years(clock.now(), 1) + timedelta(days=7)
    assert (outcome.conversion.from_edition, outcome.conversion.days_left, outcome.conversion.credited_days) == (
        "advanced", 90, 7)
    bound = await orders.get(order.id)
    assert bound.events[-1].detail["converted"] == {"from": "advanced", "days_left": 90, "credited_days": 7}


async def test_bind_after_the_term_has_ended_delivers_nothing(orders, catalog, directory, clock):
    # R13: the term runs from the purchase; 400 days after a 1-year order nothing is left.
    ent = await verified_enterprise(directory)
    order = await paid_order(orders, catalog)
    clock.advance(days=400)
    outcome = await orders.bind(order.id, user_id=BUYER, enterprise_id=ent.id, phone=PHONE)
    assert (outcome.status, outcome.reason) == ("refused", "term_over")
    untouched = await directory.get(ent.id)
    assert (untouched.edition, untouched.expires_at, untouched.contracts_left) == ("experience", None, 0)
    assert (await orders.get(order.id)).status is OrderStatus.PAID


async def test_bind_later_keeps_the_term_from_the_payment(orders, catalog, directory, clock):
    # R13: the edition is billed from the purchase, bound or not.
    ent = await verified_enterprise(directory)
    order = await paid_order(orders, catalog)
    paid_at = clock.now()
    clock.advance(days=20)
    outcome = await orders.bind(order.id, user_id=BUYER, enterprise_id=ent.id, phone=PHONE)
    assert outcome.status == "bound"
    assert outcome.enterprise.expires_at == add_years(paid_at, 1)


async def test_bind_to_another_enterprise_after_binding_is_refused(orders, catalog, directory, redis):
    first = await verified_enterprise(directory, "First")
    second = await verified_enterprise(directory, "Second")
    order = await paid_order(orders, catalog)
    assert (await orders.bind(order.id, user_id=BUYER, enterprise_id=first.id, phone=PHONE)).status == "bound"

    before = await snapshot(redis)
    outcome = await orders.bind(order.id, user_id=BUYER, enterprise_id=second.id, phone=PHONE)

    assert (outcome.status, outcome.reason) == ("refused", "already_bound")
    assert await snapshot(redis) == before
    assert (await directory.get(second.id)).delivered_orders == []


async def _on_flagship(directory, ent_id, clock):
    def mutate(e):
        e.edition, e.expires_at = "flagship", clock.now() + timedelta(days=1)
    await directory.update(ent_id, mutate)


REFUSALS = ["unknown_order", "not_paid", "expired", "cancelled", "not_yours", "not_member",
            "not_verified", "unknown_enterprise", "downgrade"]


@pytest.mark.parametrize("case", REFUSALS)
async def test_a_refused_bind_writes_nothing(orders, catalog, directory, redis, clock, case):
    ent = await verified_enterprise(directory, verified=case != "not_verified")
    if case == "not_member":
        await directory.add_member(ent.id, STRANGER_PHONE, Role.MEMBER)  # someone else, not the buyer
        ent = await directory.update(ent.id, lambda e: e.members.pop(PHONE))
    if case == "downgrade":
        await _on_flagship(directory, ent.id, clock)
    if case in ("not_paid", "expired", "cancelled"):
        order = await new_order(orders, catalog)
        if case == "expired":
            clock.advance(minutes=31)
            await orders.expire(order.id)
        if case == "cancelled":
            await orders.cancel(order.id, user_id=BUYER)
    else:
        order = await paid_order(orders, catalog)
    order_id = "o-unknown" if case == "unknown_order" else order.id
    ent_id = "ent_missing" if case == "unknown_enterprise" else ent.id
    user_id = OTHER_USER if case == "not_yours" else BUYER

    before = await snapshot(redis)
    outcome = await orders.bind(order_id, user_id=user_id, enterprise_id=ent_id, phone=PHONE)

    expected_reason = {"unknown_order": "unknown", "expired": "not_paid", "cancelled": "not_paid"}.get(case, case)
    assert (outcome.status, outcome.reason) == ("refused", expected_reason)
    assert await snapshot(redis) == before


async def test_bind_of_an_overdue_pending_order_is_refused(orders, catalog, directory, redis, clock):
    ent = await verified_enterprise(directory)
    order = await new_order(orders, catalog)
    clock.advance(hours=1)
    outcome = await orders.bind(order.id, user_id=BUYER, enterprise_id=ent.id, phone=PHONE)
    assert (outcome.status, outcome.reason) == ("refused", "not_paid")
    assert (await directory.get(ent.id)).delivered_orders == []


async def test_bind_below_an_expired_higher_edition_is_allowed(orders, catalog, directory, clock):
    ent = await verified_enterprise(directory)
    await _on_flagship(directory, ent.id, clock)
    clock.advance(days=2)  # the flagship term has run out
    order = await paid_order(orders, catalog)
    outcome = await orders.bind(order.id, user_id=BUYER, enterprise_id=ent.id, phone=PHONE)
    assert outcome.status == "bound" and outcome.enterprise.edition == "advanced"


async def test_concurrent_binds_to_two_enterprises_deliver_once(racing_orders, catalog, directory, redis):
    orders = racing_orders
    first = await verified_enterprise(directory, "First")
    second = await verified_enterprise(directory, "Second")
    order = await paid_order(orders, catalog)

    outcomes = await asyncio.gather(*(
        orders.bind(order.id, user_id=BUYER, enterprise_id=ent_id, phone=PHONE)
        for ent_id in [first.id, second.id] * 5
    ))

    bound = [o for o in outcomes if o.status == "bound"]
    assert len(bound) == 1
    winner = bound[0].enterprise.id
    for outcome in outcomes:
        if outcome is not bound[0]:
            target = outcome.order.enterprise_id
            assert target == winner
    delivered = {e.id: e.delivered_orders for e in [await directory.get(first.id), await directory.get(second.id)]}
    assert sorted(delivered.values()) == [[], [order.id]]
    assert delivered[winner] == [order.id]
    final = await stored(redis, order.id)
    assert final.enterprise_id == winner
    assert [e.kind for e in final.events].count("bound") == 1
    assert (await directory.get(winner)).contracts_left == 600


async def test_concurrent_binds_of_different_orders_to_one_enterprise_all_add_up(racing_orders, catalog, directory):
    orders = racing_orders
    ent = await verified_enterprise(directory)
    made = [await paid_order(orders, catalog) for _ in range(5)]
    outcomes = await asyncio.gather(*(
        orders.bind(o.id, user_id=BUYER, enterprise_id=ent.id, phone=PHONE) for o in made
    ))
    assert [o.status for o in outcomes] == ["bound"] * 5
    final = await directory.get(ent.id)
    assert sorted(final.delivered_orders) == sorted(o.id for o in made)
    assert final.contracts_left == 5 * 600


# --- expire, cancel ------------------------------------------------------------------------


async def test_expire_only_moves_an_overdue_pending_order(orders, catalog, redis, clock):
    order = await new_order(orders, catalog)
    assert await orders.expire(order.id) == order  # not overdue yet: unchanged
    assert await stored(redis, order.id) == order

    clock.advance(minutes=30)
    expired = await orders.expire(order.id)
    assert expired.status is OrderStatus.EXPIRED
    assert [(e.kind, e.at) for e in expired.events][-1] == ("expired", clock.now())

    clock.advance(minutes=1)
    assert await orders.expire(order.id) == expired  # idempotent: no second event
    assert await stored(redis, order.id) == expired
    assert await orders.expire("o-unknown") is None


async def test_expire_leaves_paid_orders_alone(orders, catalog, redis, clock):
    order = await paid_order(orders, catalog)
    clock.advance(days=1)
    assert (await orders.expire(order.id)).status is OrderStatus.PAID
    assert (await orders.get(order.id)).status is OrderStatus.PAID


async def test_cancel(orders, catalog, redis, clock):
    order = await new_order(orders, catalog)
    clock.advance(minutes=1)

    cancelled = await orders.cancel(order.id, user_id=BUYER)
    assert cancelled.status is OrderStatus.CANCELLED
    assert [(e.kind, e.at) for e in cancelled.events][-1] == ("cancelled", clock.now())
    assert await stored(redis, order.id) == cancelled

    clock.advance(minutes=1)
    assert await orders.cancel(order.id, user_id=BUYER) == cancelled  # idempotent
    assert await stored(redis, order.id) == cancelled
    clock.advance(hours=1)
    assert (await orders.get(order.id)).status is OrderStatus.CANCELLED  # cancelled never expires
    assert await orders.cancel("o-unknown", user_id=BUYER) is None


async def test_cancel_by_another_user_changes_nothing(orders, catalog, redis):
    order = await new_order(orders, catalog)
    before = await snapshot(redis)
    result = await orders.cancel(order.id, user_id=OTHER_USER)
    assert result.status is OrderStatus.PENDING
    assert await snapshot(redis) == before


async def test_cancel_of_a_paid_order_changes_nothing(orders, catalog, redis):
    order = await paid_order(orders, catalog)
    before = await snapshot(redis)
    assert (await orders.cancel(order.id, user_id=BUYER)).status is OrderStatus.PAID
    assert await snapshot(redis) == before


async def test_cancel_of_an_overdue_order_shows_it_expired(orders, catalog, redis, clock):
    order = await new_order(orders, catalog)
    clock.advance(minutes=30)
    result = await orders.cancel(order.id, user_id=BUYER)
    assert result.status is OrderStatus.EXPIRED
    assert (await stored(redis, order.id)).status is OrderStatus.EXPIRED
    assert [e.kind for e in result.events] == ["created", "expired"]


async def test_concurrent_cancels_record_one_event(racing_orders, catalog, redis):
    orders = racing_orders
    order = await new_order(orders, catalog)
    results = await asyncio.gather(*(orders.cancel(order.id, user_id=BUYER) for _ in range(10)))
    assert {r.status for r in results} == {OrderStatus.CANCELLED}
    assert [e.kind for e in (await stored(redis, order.id)).events] == ["created", "cancelled"]


async def test_refunds_are_json_in_a_list(orders, catalog, redis):
    order = await new_order(orders, catalog)
    await orders.cancel(order.id, user_id=BUYER)
    await pay(orders, order, charge_id="ch-9")
    (raw,) = await redis.lrange(keys.refunds(), 0, -1)
    assert json.loads(raw)["charge_id"] == "ch-9"
