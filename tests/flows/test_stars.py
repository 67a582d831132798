"""In-chat invoices in Telegram Stars (CHAT_CURRENCY=XTR): no provider token, one price, the
catalog's star price; the payment applied once; a second payment kept for a refund and paid
back by an agent through refundStarPayment, once. A CNY payment taken by a Telegram Payments
provider cannot be refunded by the bot: the case is marked for a person and stays listed.
The production dispatcher on the fake Telegram."""
from __future__ import annotations

import pytest
from esign_devkit.testing.harness import BotHarness

from config.settings import Settings
from services.orders import OrderStatus, refund_case_id
from tests.flows.steps import to_payment


@pytest.fixture
async def stars_harness(redis, clock):
    harness = BotHarness(redis, clock=clock, settings=Settings(_env_file=None, bot_token=None, code_secret="test-secret",
                                                                chat_currency="XTR"))
    yield harness
    await harness.close()


async def test_stars_invoice_has_no_provider_token_one_price_and_pays_the_order(stars_harness):
    h = stars_harness
    buyer = h.user()
    order = await to_payment(h, buyer)

    invoice = buyer.last_invoice()
    assert invoice["currency"] == "XTR" and invoice["provider_token"] == ""
    assert [p["amount"] for p in invoice["prices"]] == [48_000] and order.total_stars == 48_000
    await buyer.pay(charge_id="stars-charge-1")

    paid = await h.expect_order(buyer, OrderStatus.PAID)
    assert paid.charge_id == "stars-charge-1" and paid.paid_payment()["currency"] == "XTR"
    assert "48,000 ⭐" in buyer.screen.text and "支付成功" in buyer.screen.text
    assert await h.orders.refunds() == []


async def test_stars_a_forged_pre_checkout_in_yuan_is_refused(stars_harness):
    h = stars_harness
    buyer = h.user()
    await to_payment(h, buyer)
    answer = await buyer.pre_checkout(currency="CNY", total_amount=480_000)
    assert answer["ok"] is False


async def test_stars_a_second_payment_is_refunded_by_an_agent_through_refund_star_payment_once(stars_harness):
    h = stars_harness
    buyer = h.user()
    await to_payment(h, buyer)
    await buyer.pay(charge_id="stars-charge-1")
    await buyer.payment_arrives(charge_id="stars-charge-2")  # paid twice: the second cannot be applied
    case_id = refund_case_id("stars-charge-2")
    agent = h.agent(name="Li")
    agent.expect(rf"48,000 ⭐.*\n.*退款单 {case_id}")

    await agent.tap("🔁 退款")
    await agent.tap("🔁 退款")

    calls = h.telegram.calls_of("refundStarPayment")
    assert [(c.params["user_id"], c.params["telegram_payment_charge_id"]) for c in calls] == [(buyer.id, "stars-charge-2")]
    assert h.telegram.star_charges["stars-charge-2"]["refunded"] is True
    assert h.telegram.star_charges["stars-charge-1"]["refunded"] is False
    assert (await h.app.refunds.case(case_id)).state.status == "refunded"
    told = [t for t in buyer.bot_messages() if "已原路退回" in t]
    assert len(told) == 1 and "48,000 ⭐" in told[0]
    agent.expect(r"没有重复退款")


async def test_a_cny_payment_taken_by_a_telegram_provider_is_marked_for_a_person_not_refunded(esign_harness):
    h = esign_harness
    buyer = h.user()
    await to_payment(h, buyer)
    await buyer.pay(charge_id="tg-charge-1")
    await buyer.payment_arrives(charge_id="tg-charge-2")
    case_id = refund_case_id("tg-charge-2")
    agent = h.agent(name="Li")
    alert = agent.expect("机器人无法退款")
    assert not alert.get("reply_markup")

    outcome = await h.app.refunds.refund(case_id, by="cli")

    assert outcome.status == "manual" and not outcome.called
    assert h.telegram.calls_of("refundStarPayment") == []
    listed = await agent.command("/refunds")
    assert case_id in listed.text and "需人工处理" in listed.text and listed.buttons == []
