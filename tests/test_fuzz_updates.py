"""docs/reliability.md, row 10: Hypothesis drives random update sequences through the production
dispatcher (random text, huge and odd Unicode, stale and forged buttons, other people's
contacts, payments for unknown orders, mixed with valid taps that walk the flows).

After every update: no unhandled exception (nothing reaches the error guard), the update got
an answer, orders moved only along legal transitions, and bad input did not lose the cart.
"""
from __future__ import annotations

import asyncio
import logging
import os

from esign_devkit.testing.harness import BotHarness
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.runtime.redis_client import redis_from_url
from services.orders import OrderStatus
from tests.conftest import TEST_REDIS_URL

RUNS = int(os.environ.get("FUZZ_UPDATE_RUNS", "40"))
DEMO_PHONE = "+8613800138000"
LEGAL_NEXT = {
    OrderStatus.PENDING: set(OrderStatus),
    OrderStatus.PAID: {OrderStatus.PAID, OrderStatus.BOUND},
    OrderStatus.BOUND: {OrderStatus.BOUND},
    OrderStatus.EXPIRED: {OrderStatus.EXPIRED},
    OrderStatus.CANCELLED: {OrderStatus.CANCELLED},
}

odd_text = st.one_of(
    st.text(min_size=1, max_size=40),
    st.sampled_from(["/start", "/help", "123456", "13800138000", "", " ", "\u200b", "🙂" * 50,
                     "ＡＢＣ", "\u202eevil", "a" * 4096, "深圳" * 30, "<b>x</b>", "{x}", "%s"]),
).filter(lambda t: t != "")
forged_data = st.one_of(
    st.sampled_from(["ed:advanced", "ed:professional", "ed:nope", "yr:2", "yr:99", "yr:x", "pk:none",
                     "pk:pack_10k", "pk:zzz", "buy:submit", "ph:resend", "ph:change", "ord:view:o000",
                     "ord:pay:o000", "ord:bind:o000", "bnd:o000:ent_x", "bok:o000:ent_x", "nav:home",
                     "nav:nowhere", "zz", ":", "x" * 64]),
    st.text(max_size=64),
)
action = st.one_of(
    st.tuples(st.just("tap"), st.integers(0, 20)),
    st.tuples(st.just("tap"), st.integers(0, 20)),
    st.tuples(st.just("tap"), st.integers(0, 20)),
    st.tuples(st.just("text"), odd_text),
    st.tuples(st.just("forged"), forged_data),
    st.tuples(st.just("contact_other"), st.just("+8613912345678")),
    st.tuples(st.just("contact_own"), st.just(DEMO_PHONE)),
    st.tuples(st.just("code"), st.just("")),
    st.tuples(st.just("pay_unknown"), st.text(min_size=1, max_size=20)),
    st.tuples(st.just("pay_last"), st.just("")),
    st.tuples(st.just("sticker"), st.just("")),
)


class GuardCounter(logging.Handler):
    """Counts updates that reached the error guard (an unhandled exception in a handler)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.failures: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith("update.failed"):
            self.failures.append(record.getMessage() + (f" {record.exc_info[1]!r}" if record.exc_info else ""))


async def play(actions: list[tuple[str, object]]) -> None:
    redis = redis_from_url(TEST_REDIS_URL)
    await redis.flushdb()
    harness = BotHarness(redis)
    guard = GuardCounter()
    logging.getLogger("bot.errors").addHandler(guard)
    try:
        await harness.enterprise("深圳示例科技有限公司", members={DEMO_PHONE: "super_admin"})
        buyer = harness.user(phone=DEMO_PHONE)
        await buyer.send("/start")
        statuses: dict[str, OrderStatus] = {}
        for kind, arg in actions:
            log_before = len(harness.telegram.bot_log)
            session_before = await harness.session_of(buyer)
            state_before = await harness.state_of(buyer)
            # Forged data that a button of the message carries is a real tap, not a forgery.
            forged = kind == "forged" and arg not in buttons_of(harness.telegram.last_message(buyer.id, from_bot=True))
            answered_query = await step(harness, buyer, kind, arg)
            assert not guard.failures, guard.failures
            if answered_query is not None:
                assert answered_query, f"{kind} {arg!r}: the query was not answered"
            elif kind in ("text", "contact_other", "sticker", "code"):
                assert len(harness.telegram.bot_log) > log_before, f"{kind} {arg!r}: no answer"
            if forged or kind in ("contact_other", "sticker") or (kind == "text" and state_before not in TEXT_STEPS):
                assert (await harness.session_of(buyer)).cart == session_before.cart, f"{kind} lost the cart"
            for order in await harness.orders_of(buyer):
                before = statuses.get(order.id)
                assert before is None or order.status in LEGAL_NEXT[before], (before, order.status)
                statuses[order.id] = order.status
        assert harness.unanswered_queries() == []
    finally:
        logging.getLogger("bot.errors").removeHandler(guard)
        await harness.close()
        await redis.flushdb()
        await redis.aclose()


TEXT_STEPS = {"Buy:enterprise_name", "Phone:number", "Phone:code"}


def buttons_of(message: dict | None) -> list[str]:
    """The callback data of a message's inline buttons."""
    rows = (message or {}).get("reply_markup", {}).get("inline_keyboard", [])
    return [button["callback_data"] for row in rows for button in row if "callback_data" in button]


async def step(harness: BotHarness, buyer, kind: str, arg) -> bool | None:
    """Do one action; for a query, return whether the bot answered it."""
    telegram = harness.telegram
    if kind == "tap":
        message = telegram.last_message(buyer.id, from_bot=True)
        buttons = buttons_of(message)
        if not buttons:
            return None
        update = telegram.callback_update(buyer.fake, message["message_id"], buttons[arg % len(buttons)])
        await harness.feed(update)
        return telegram.callback_answer(update.callback_query.id) is not None
    if kind == "forged":
        message = telegram.last_message(buyer.id, from_bot=True)
        update = telegram.callback_update(buyer.fake, message["message_id"] if message else 1, arg)
        await harness.feed(update)
        return telegram.callback_answer(update.callback_query.id) is not None
    if kind == "text":
        await buyer.send(arg)
    elif kind == "contact_other":
        await buyer.share_contact(arg, own=False)
    elif kind == "contact_own":
        await buyer.share_contact(arg)
    elif kind == "code":
        code = harness.sms.gateway.last_code(DEMO_PHONE)
        await buyer.send(code or "000000")
    elif kind == "sticker":
        await buyer.send_sticker()
    elif kind == "pay_unknown":
        invoices = telegram.invoices(buyer.id)
        if invoices:
            update = telegram.pre_checkout_update(buyer.fake, invoices[-1]["message_id"], invoice_payload=arg)
            await harness.feed(update)
            return telegram.pre_checkout_answer(update.pre_checkout_query.id) is not None
    elif kind == "pay_last":
        invoices = telegram.invoices(buyer.id)
        if invoices:
            update = telegram.pre_checkout_update(buyer.fake, invoices[-1]["message_id"])
            await harness.feed(update)
            answer = telegram.pre_checkout_answer(update.pre_checkout_query.id)
            if answer and answer["ok"]:
                await harness.feed(telegram.successful_payment_update(buyer.fake, invoices[-1]["message_id"]))
            return answer is not None
    return None


@settings(max_examples=RUNS, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(action, min_size=1, max_size=25))
def test_random_update_sequences_never_break_the_bot(actions):
    asyncio.run(play(actions))
