"""F4 in-chat payment: a repeated payment notice pays once and confirms once; pre-checkout
refuses expired, paid and tampered orders with a reason; a payment that cannot be applied is
kept for a refund and the buyer is told (docs/rules.md, Orders)."""
from services.orders import OrderStatus
from tests.flows.steps import to_payment


def success_messages(buyer) -> list[str]:
    return [t for t in buyer.bot_messages() if "支付成功" in t]


async def test_F4_repeated_successful_payment_pays_once_and_confirms_once(esign_harness):
    buyer = esign_harness.user()
    order = await to_payment(esign_harness, buyer)
    assert (await buyer.pre_checkout())["ok"] is True

    await buyer.payment_arrives(charge_id="tg-charge-1")
    await buyer.payment_arrives(charge_id="tg-charge-1")

    assert len(success_messages(buyer)) == 1
    paid = await esign_harness.orders.get(order.id)
    assert paid.status is OrderStatus.PAID and paid.charge_id == "tg-charge-1"
    assert [e.kind for e in paid.events].count("paid") == 1
    assert await esign_harness.orders.refunds() == []


async def test_F4_second_charge_for_a_paid_order_is_kept_for_a_refund(esign_harness):
    buyer = esign_harness.user()
    order = await to_payment(esign_harness, buyer)
    await buyer.pay(charge_id="tg-charge-1")

    screen = await buyer.payment_arrives(charge_id="tg-charge-2")

    assert len(success_messages(buyer)) == 1
    assert "款项将退回" in screen.text and order.id in screen.text
    assert "已支付" in screen.text
    [refund] = await esign_harness.orders.refunds()
    assert refund["order_id"] == order.id and refund["charge_id"] == "tg-charge-2"
    assert refund["amount_fen"] == 480_000
    assert (await esign_harness.orders.get(order.id)).charge_id == "tg-charge-1"


async def test_F4_pre_checkout_for_an_expired_order_is_refused_with_a_reason(esign_harness):
    buyer = esign_harness.user()
    order = await to_payment(esign_harness, buyer)
    esign_harness.clock.advance(minutes=31)

    answer = await buyer.pre_checkout()

    assert answer == {"ok": False, "error_message": "订单已过期，请重新下单。"}
    assert (await esign_harness.orders.get(order.id)).status is OrderStatus.EXPIRED


async def test_F4_pre_checkout_just_before_expiry_is_accepted(esign_harness):
    buyer = esign_harness.user()
    await to_payment(esign_harness, buyer)
    esign_harness.clock.advance(minutes=29, seconds=59)
    assert (await buyer.pre_checkout()) == {"ok": True}


async def test_F4_pre_checkout_for_an_already_paid_order_is_refused(esign_harness):
    buyer = esign_harness.user()
    await to_payment(esign_harness, buyer)
    invoice = buyer.last_invoice()
    await buyer.pay(invoice)

    answer = await buyer.pre_checkout(invoice)

    assert answer == {"ok": False, "error_message": "订单已支付，请勿重复支付。"}


async def test_F4_pre_checkout_with_a_forged_amount_is_refused(esign_harness):
    buyer = esign_harness.user()
    order = await to_payment(esign_harness, buyer)

    answer = await buyer.pre_checkout(total_amount=100)
    assert answer == {"ok": False, "error_message": "订单金额已变化，请重新下单。"}
    answer = await buyer.pre_checkout(currency="USD")
    assert answer["ok"] is False
    assert (await esign_harness.orders.get(order.id)).status is OrderStatus.PENDING


async def test_F4_pre_checkout_for_a_forged_or_foreign_payload_is_refused(esign_harness):
    buyer, other = esign_harness.user(), esign_harness.user()
    their_order = await to_payment(esign_harness, other)
    await to_payment(esign_harness, buyer)

    answer = await buyer.pre_checkout(invoice_payload="o000000000000")
    assert answer == {"ok": False, "error_message": "订单不存在，请重新下单。"}
    answer = await buyer.pre_checkout(invoice_payload=their_order.id)
    assert answer == {"ok": False, "error_message": "该订单不属于您。"}


async def test_F4_pre_checkout_for_a_cancelled_order_is_refused(esign_harness):
    buyer = esign_harness.user()
    await to_payment(esign_harness, buyer)
    invoice = buyer.last_invoice()
    await buyer.tap("我的订单")
    await buyer.tap(__import__("re").compile("^高级版 1年"))
    await buyer.tap("取消订单")

    answer = await buyer.pre_checkout(invoice)
    assert answer == {"ok": False, "error_message": "订单已取消，请重新下单。"}


async def test_F4_payment_for_an_expired_order_is_recorded_for_a_refund_and_the_buyer_told(esign_harness):
    buyer = esign_harness.user()
    order = await to_payment(esign_harness, buyer)
    esign_harness.clock.advance(minutes=31)

    screen = await buyer.payment_arrives(charge_id="tg-late-1")

    assert "我们已收到您的付款 ¥4,800.00" in screen.text
    assert order.id in screen.text and "款项将退回" in screen.text
    assert "已过期" in screen.text
    assert "expired" not in screen.text  # no internal codes in what the buyer reads
    assert {"我的订单", "联系客服"} <= set(screen.buttons)  # R17
    assert success_messages(buyer) == []
    [refund] = await esign_harness.orders.refunds()
    assert refund["order_id"] == order.id and refund["charge_id"] == "tg-late-1"
    assert refund["reason"] == "expired" and refund["amount_fen"] == 480_000
    late = await esign_harness.orders.get(order.id)
    assert late.status is OrderStatus.EXPIRED and late.paid_at is None

    # The same notice again is not a second refund.
    await buyer.payment_arrives(charge_id="tg-late-1")
    assert len(await esign_harness.orders.refunds()) == 1


async def test_F4_paid_order_can_no_longer_be_cancelled_or_repaid(esign_harness):
    buyer = esign_harness.user()
    order = await to_payment(esign_harness, buyer)
    await buyer.pay()

    answer = await buyer.tap_stale(1, f"ord:cancel:{order.id}")
    assert answer["text"] == "该订单无法取消。"
    answer = await buyer.tap_stale(1, f"ord:pay:{order.id}")
    assert "该订单当前无法支付" in answer["text"]
    assert (await esign_harness.orders.get(order.id)).status is OrderStatus.PAID
    assert len(esign_harness.telegram.calls_of("sendInvoice")) == 1
