"""F12 payment notices: the sandbox gateway signs HMAC-SHA256 over the timestamp and the body;
the notify endpoint checks the signature, the age, the order and the amount, and answers
success only after the payment is stored. A repeated notice changes nothing; a forged or
stale one is refused and nothing is written; a signed one that cannot be applied is kept for
a refund."""
from __future__ import annotations

import json

from services.catalog import Cart, quote
from services.orders import Channel
from services.payment_gateway import SIGNATURE_HEADER, TIMESTAMP_HEADER, SandboxGateway, sign
from tests.flows.steps import ENTERPRISE_NAME
from tests.web.conftest import NOTIFY_SECRET, WebWorld


async def snapshot(redis) -> dict:
    """Every key and its value: "nothing is written" means this does not change."""
    found = {}
    async for key in redis.scan_iter("*"):
        kind = await redis.type(key)
        if kind == "string":
            found[key] = await redis.get(key)
        elif kind == "hash":
            found[key] = await redis.hgetall(key)
        elif kind == "zset":
            found[key] = await redis.zrange(key, 0, -1, withscores=True)
        elif kind == "list":
            found[key] = await redis.lrange(key, 0, -1)
        elif kind == "set":
            found[key] = sorted(await redis.smembers(key))
    return found


async def web_order(w: WebWorld, buyer, *, edition: str = "professional"):
    """A submitted web order with its sandbox payment opened (as the cashier page has it)."""
    from services.payment_gateway import PaymentRequest

    q = quote(w.harness.app.catalog, Cart(edition=edition, years=1, pack_chosen=True))
    order, _ = await w.harness.orders.create(user_id=buyer.id, chat_id=buyer.id, cart_id=f"cart-{buyer.id}",
                                             quote=q, channel=Channel.WEB, phone=buyer.phone,
                                             enterprise_name=ENTERPRISE_NAME)
    session = await w.gateway.create_payment(PaymentRequest(
        order_id=order.id, amount_fen=order.total_fen, currency=order.currency, description="专业版 1年",
        notify_url=f"{w.base}/payments/notify/sandbox", return_url=f"{w.base}/"))
    return order, await w.gateway.get(session.payment_id)


async def paid_notice(w: WebWorld, payment, **change) -> tuple[bytes, dict[str, str]]:
    """The notice the sandbox sends once the payment is made (fields changed as asked, re-signed)."""
    made = await w.gateway.pay(payment.payment_id)
    await w.gateway.drain()  # the real one went out already; this is a copy of it
    body, headers = w.gateway.notice(made)
    if change:
        data = {**json.loads(body), **change}
        body = json.dumps(data).encode()
        headers[SIGNATURE_HEADER] = sign(NOTIFY_SECRET.encode(), headers[TIMESTAMP_HEADER], body)
    return body, headers


def quiet_gateway(w: WebWorld) -> SandboxGateway:
    """A sandbox that records its notices instead of posting them, so a test posts them itself."""
    sent: list = []

    async def post(url, body, headers):
        sent.append((body, headers))
        return 200

    gateway = SandboxGateway(w.harness.redis, w.harness.clock, NOTIFY_SECRET.encode(), pay_base_url=w.base, post=post)
    gateway.sent = sent
    return gateway


async def test_F12_a_paid_notice_pays_the_order_and_a_replay_changes_nothing(web_world):
    w = web_world
    buyer = w.harness.user()
    order, payment = await web_order(w, buyer)
    w.gateway = quiet_gateway(w)  # its payments live in the same Redis
    body, headers = await paid_notice(w, payment)

    status, answer = await w.post_notice(body, headers)

    assert (status, json.loads(answer)) == (200, {"code": "SUCCESS"})
    paid = await w.harness.orders.get(order.id)
    assert paid.status.value == "paid" and paid.charge_id == f"sandbox:{payment.payment_id}"
    assert "支付成功" in buyer.screen.text and "立即绑定" in buyer.screen.buttons
    told = len(buyer.bot_messages())
    before = await snapshot(w.harness.redis)

    status, answer = await w.post_notice(body, headers)  # the provider sends it again

    assert (status, json.loads(answer)) == (200, {"code": "SUCCESS"})
    assert await snapshot(w.harness.redis) == before
    assert len(buyer.bot_messages()) == told  # the chat is told once


async def test_F12_a_forged_notice_is_refused_and_nothing_is_written(web_world):
    w = web_world
    buyer = w.harness.user()
    order, payment = await web_order(w, buyer)
    w.gateway = quiet_gateway(w)
    body, headers = await paid_notice(w, payment)
    before = await snapshot(w.harness.redis)

    forged_sig = {**headers, SIGNATURE_HEADER: sign(b"not-the-secret", headers[TIMESTAMP_HEADER], body)}
    bad_body = body.replace(b'"paid"', b'"paid" ', 1)
    for forged_body, forged_headers in ((body, forged_sig), (bad_body, headers),
                                        (body, {TIMESTAMP_HEADER: headers[TIMESTAMP_HEADER]}), (b"{}", headers)):
        status, answer = await w.post_notice(forged_body, forged_headers)
        assert status == 400 and json.loads(answer)["code"] == "FAIL"

    assert await snapshot(w.harness.redis) == before
    assert (await w.harness.orders.get(order.id)).status.value == "pending_payment"
    assert not any("支付成功" in text for text in buyer.bot_messages())


async def test_F12_a_stale_notice_is_refused_and_nothing_is_written(web_world):
    w = web_world
    buyer = w.harness.user()
    order, payment = await web_order(w, buyer)
    w.gateway = quiet_gateway(w)
    made = await w.gateway.pay(payment.payment_id)
    old = int(w.harness.clock.now().timestamp()) - 301  # the notice is good for 300 s
    body, headers = w.gateway.notice(made, timestamp=old)
    before = await snapshot(w.harness.redis)

    status, answer = await w.post_notice(body, headers)

    assert status == 400 and json.loads(answer) == {"code": "FAIL", "message": "stale"}
    assert await snapshot(w.harness.redis) == before
    # The same notice, signed afresh (the provider's next retry), goes through.
    body, headers = w.gateway.notice(made)
    assert (await w.post_notice(body, headers))[0] == 200
    assert (await w.harness.orders.get(order.id)).status.value == "paid"


async def test_F12_a_signed_notice_that_cannot_be_applied_is_kept_for_a_refund_and_staff_alerted(web_world):
    """R21: a correctly signed notice means the provider took the money. Another amount, another
    currency or an unknown order cannot be applied: each becomes a refund record and a staff
    alert, and is answered success (stored: the provider may stop sending it), once."""
    w = web_world
    buyer = w.harness.user()
    order, payment = await web_order(w, buyer)
    w.gateway = quiet_gateway(w)

    cases = (({"amount_fen": 1, "payment_id": "sbx-amount"}, "mismatch", order.id),
             ({"currency": "USD", "payment_id": "sbx-currency"}, "mismatch", order.id),
             ({"order_id": "onosuchorder1", "payment_id": "sbx-unknown"}, "unknown_order", "onosuchorder1"))
    for change, _reason, _order_id in cases:
        body, headers = await paid_notice(w, payment, **change)
        for _ in range(2):  # the provider sends it again: nothing more is written
            status, _ = await w.post_notice(body, headers)
            assert status == 200

    refunds = await w.harness.orders.refunds()
    assert [(r["charge_id"], r["reason"], r["order_id"], r["provider"]) for r in refunds] == [
        (f"sandbox:{change['payment_id']}", reason, order_id, "sandbox") for change, reason, order_id in cases]
    assert [r["amount_fen"] for r in refunds] == [1, order.total_fen, order.total_fen]
    staff = w.harness.telegram.messages(w.harness.settings.staff_chat_id, from_bot=True)
    alerts = [m["text"] for m in staff if "待退款" in m.get("text", "")]
    assert len(alerts) == 3 and "onosuchorder1" in alerts[2] and "¥0.01" in alerts[0]
    assert (await w.harness.orders.get(order.id)).status.value == "pending_payment"


async def test_F12_a_notice_for_another_gateway_is_unknown(web_world):
    w = web_world
    status, _ = await w.post_notice(b"{}", {}, gateway="wechat")
    assert status == 404


async def test_F12_a_late_payment_for_an_expired_order_is_kept_for_a_refund_and_the_chat_is_told(web_world):
    w = web_world
    buyer = w.harness.user()
    order, payment = await web_order(w, buyer)
    w.gateway = quiet_gateway(w)
    w.harness.advance(minutes=31)  # the order's payment window closed
    body, headers = await paid_notice(w, payment)

    status, _ = await w.post_notice(body, headers)

    assert status == 200  # stored: the provider must stop sending it
    late = await w.harness.orders.get(order.id)
    assert late.status.value == "expired"
    [refund] = await w.harness.orders.refunds()
    assert refund["order_id"] == order.id and refund["reason"] == "expired"
    assert "款项将退回" in buyer.screen.text and "订单已过期" in buyer.screen.text


async def test_F12_the_sandbox_retries_a_notice_the_endpoint_did_not_take(web_world):
    """Answered 5xx (or not at all), the sandbox sends the notice again, as providers do."""
    w = web_world
    buyer = w.harness.user()
    order, payment = await web_order(w, buyer)
    answers = iter([503, 0, 200])
    calls = []

    async def flaky(url, body, headers):
        calls.append(url)
        status = next(answers)
        if status == 200:
            return (await w.post_notice(body, headers))[0]
        return status

    w.gateway._post = flaky
    await w.gateway.pay(payment.payment_id)
    await w.gateway.drain()

    assert len(calls) == 3
    assert (await w.harness.orders.get(order.id)).status.value == "paid"


async def test_F12_the_gateway_query_tells_where_a_payment_stands(web_world):
    w = web_world
    buyer = w.harness.user()
    order, payment = await web_order(w, buyer)
    assert (await w.gateway.query(order.id)).status == "created"
    await w.gateway.pay(payment.payment_id)
    await w.gateway.drain()
    status = await w.gateway.query(order.id)
    assert status.status == "paid" and status.amount_fen == order.total_fen and status.paid_at is not None
    assert await w.gateway.query("onosuchorder1") is None
