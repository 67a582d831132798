"""docs/reliability.md, row 11: a Hypothesis stateful test of the order state machine on real Redis.

Random sequences of creates, payments (right, wrong, replayed), clock moves, cancels,
expiries and binds; after every step the orders must only have moved along legal
transitions, each paid order is delivered at most once, and no payment is lost.
"""
from __future__ import annotations

import asyncio
import json
import os

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from bot.runtime.redis_client import redis_from_url
from services.catalog import Cart, load_catalog, quote
from services.clock import FixedClock
from services.enterprises import RedisEnterpriseDirectory, Role
from services.orders import OrderService, OrderStatus
from tests.conftest import TEST_REDIS_URL

LEGAL = {
    None: {OrderStatus.PENDING},
    OrderStatus.PENDING: {OrderStatus.PENDING, OrderStatus.PAID, OrderStatus.EXPIRED, OrderStatus.CANCELLED},
    OrderStatus.PAID: {OrderStatus.PAID, OrderStatus.BOUND},
    OrderStatus.BOUND: {OrderStatus.BOUND},
    OrderStatus.EXPIRED: {OrderStatus.EXPIRED},
    OrderStatus.CANCELLED: {OrderStatus.CANCELLED},
}
PHONE = "+8613800138000"
USERS = (1, 2)
RUNS = int(os.environ.get("ORDER_STATE_MACHINE_RUNS", "250"))


class OrderMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.redis = redis_from_url(TEST_REDIS_URL)
        self.clock = FixedClock()
        self.catalog = load_catalog()
        self.orders = OrderService(self.redis, self.clock, self.catalog)
        self.directory = RedisEnterpriseDirectory(self.redis, self.clock)
        self.order_ids: list[str] = []
        self.last_status: dict[str, OrderStatus] = {}
        self.charges: list[tuple[str, str]] = []  # (charge id, order id) of every payment sent
        self.carts = 0

    def run(self, coro):
        return self.loop.run_until_complete(coro)

    @initialize()
    def empty_store_and_two_enterprises(self) -> None:
        self.run(self.redis.flushdb())  # the tests' own database index
        self.enterprises = []
        for name, verified in (("甲公司", True), ("乙公司", False)):
            ent = self.run(self.directory.add(name, verified=verified))
            self.run(self.directory.add_member(ent.id, PHONE, Role.SUPER_ADMIN))
            self.enterprises.append(ent.id)

    @rule(user=st.sampled_from(USERS), years=st.sampled_from([1, 2, 3]),
          pack=st.sampled_from([None, "pack_1k", "pack_10k"]), same_cart=st.booleans())
    def create(self, user: int, years: int, pack: str | None, same_cart: bool) -> None:
        if not same_cart or not self.carts:
            self.carts += 1
        q = quote(self.catalog, Cart(edition="advanced", years=years, pack=pack, pack_chosen=True))
        order, _ = self.run(self.orders.create(user_id=user, chat_id=user, cart_id=f"cart{self.carts}",
                                               quote=q, phone=PHONE))
        if order.id not in self.order_ids:
            self.order_ids.append(order.id)

    @precondition(lambda self: self.order_ids)
    @rule(data=st.data(), right_amount=st.booleans())
    def pay(self, data, right_amount: bool) -> None:
        order_id = data.draw(st.sampled_from(self.order_ids))
        order = self.run(self.orders.get(order_id))
        charge = f"ch{len(self.charges)}"
        amount = order.total_fen if right_amount else order.total_fen + 1
        self.run(self.orders.mark_paid(order_id, charge_id=charge, amount_fen=amount,
                                       currency="CNY", provider="telegram"))
        self.charges.append((charge, order_id))

    @precondition(lambda self: self.charges)
    @rule(data=st.data())
    def replay_payment(self, data) -> None:
        charge, order_id = data.draw(st.sampled_from(self.charges))
        order = self.run(self.orders.get(order_id))
        outcome = self.run(self.orders.mark_paid(order_id, charge_id=charge, amount_fen=order.total_fen,
                                                 currency="CNY", provider="telegram"))
        assert outcome.status == "duplicate"

    @rule(minutes=st.sampled_from([1, 10, 29, 31]))
    def time_passes(self, minutes: int) -> None:
        self.clock.advance(minutes=minutes)

    @precondition(lambda self: self.order_ids)
    @rule(data=st.data(), user=st.sampled_from(USERS))
    def cancel(self, data, user: int) -> None:
        self.run(self.orders.cancel(data.draw(st.sampled_from(self.order_ids)), user_id=user))

    @precondition(lambda self: self.order_ids)
    @rule(data=st.data())
    def expire(self, data) -> None:
        self.run(self.orders.expire(data.draw(st.sampled_from(self.order_ids))))

    @precondition(lambda self: self.order_ids)
    @rule(data=st.data(), user=st.sampled_from(USERS), which=st.sampled_from([0, 1]))
    def bind(self, data, user: int, which: int) -> None:
        order_id = data.draw(st.sampled_from(self.order_ids))
        self.run(self.orders.bind(order_id, user_id=user, enterprise_id=self.enterprises[which], phone=PHONE))

    @invariant()
    def orders_only_move_along_legal_transitions(self) -> None:
        for order_id in self.order_ids:
            order = self.run(self.orders.get(order_id))
            assert order.status in LEGAL[self.last_status.get(order_id)], (self.last_status.get(order_id), order.status)
            self.last_status[order_id] = order.status
            if order.status in (OrderStatus.PAID, OrderStatus.BOUND):
                assert order.charge_id and order.paid_at
            if order.status is OrderStatus.BOUND:
                assert order.enterprise_id == self.enterprises[0]  # only the verified one

    @invariant()
    def each_paid_order_is_delivered_at_most_once(self) -> None:
        if not getattr(self, "enterprises", None):
            return
        ent = self.run(self.directory.get(self.enterprises[0]))
        assert len(ent.delivered_orders) == len(set(ent.delivered_orders))
        bound = [self.run(self.orders.get(i)) for i in self.order_ids]
        bound = [o for o in bound if o.status is OrderStatus.BOUND]
        assert sorted(ent.delivered_orders) == sorted(o.id for o in bound)
        assert ent.contracts_left == sum(o.contracts for o in bound)

    @invariant()
    def no_payment_is_lost(self) -> None:
        """Every charge either paid its order or is kept for a refund, exactly once."""
        refunds = [json.loads(r) for r in self.run(self.redis.lrange("{esign}:refunds", 0, -1))]
        refunded = [r["charge_id"] for r in refunds]
        assert len(refunded) == len(set(refunded))
        for charge, order_id in self.charges:
            order = self.run(self.orders.get(order_id))
            assert (order.charge_id == charge) != (charge in refunded), (charge, order.status)

    def teardown(self) -> None:
        self.run(self.redis.flushdb())
        self.run(self.redis.aclose())
        self.loop.close()


OrderMachine.TestCase.settings = settings(
    max_examples=RUNS, stateful_step_count=8, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
test_order_state_machine = OrderMachine.TestCase
