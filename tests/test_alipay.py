"""Alipay gateway against the local fake Alipay, over real HTTP: signed page/wap URLs opened by
a browser, signed answers, form notices posted to a notify endpoint, refunds. Keys are made here."""
from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from urllib.parse import parse_qsl, urlencode, urlsplit

import aiohttp
import pytest
from esign_devkit.testing.fake_alipay import FakeAlipay, FakeTrade
from esign_devkit.testing.fake_provider import MerchantEndpoint
from esign_devkit.testing.fake_wechat_pay import new_rsa_key

from services.alipay import (
    NOTICE_UNSIGNED,
    REQUEST_UNSIGNED,
    AlipayGateway,
    AlipayRequest,
    alipay_gateway,
    sign_content,
    to_fen,
    yuan,
)
from services.clock import FixedClock
from services.payment_gateway import NoticeRejected, PaymentGateway
from services.payment_refunds import ProviderError, RefundingGateway, RefundRefused, ResponseNotTrusted
from services.wechat_pay import rsa_verify

APP_ID, SELLER = "2021000117650001", "2088102177846880"
ORDER = "o1a2b3c4d5e6f"
FAST = (0.05,) * 7  # Alipay's 25 hours of retries, compressed; 8 deliveries in all


@dataclass
class World:
    fake: FakeAlipay
    gateway: AlipayGateway
    endpoint: MerchantEndpoint
    clock: FixedClock
    app_key = new_rsa_key()

    def request(self, order_id: str = ORDER, amount_fen: int = 1_280_000, **extra: object) -> AlipayRequest:
        return AlipayRequest(order_id=order_id, amount_fen=amount_fen, currency="CNY", description="腾讯电子签 专业版 1年",
                             notify_url=self.endpoint.url, return_url="https://shop.example/checkout/t/result", **extra)

    def gateway_with(self, **change: object) -> AlipayGateway:
        args: dict[str, object] = {"app_id": APP_ID, "app_private_key": self.app_key,
                                   "alipay_public_key": self.fake.alipay_public_key, "clock": self.clock,
                                   "gateway_url": self.fake.gateway_url, "seller_id": SELLER}
        args.update(change)
        return AlipayGateway(**args)  # type: ignore[arg-type]


@pytest.fixture
async def world() -> AsyncIterator[World]:
    clock = FixedClock(datetime.now(UTC).replace(microsecond=0))
    fake = FakeAlipay(clock=clock, retry_schedule=FAST)
    await fake.start()
    fake.add_app(app_id=APP_ID, public_key=World.app_key.public_key(), seller_id=SELLER)
    endpoint = MerchantEndpoint(gateway=None)
    await endpoint.start()
    w = World(fake, None, endpoint, clock)  # type: ignore[arg-type]
    w.gateway = endpoint.gateway = w.gateway_with()
    yield w
    await w.gateway.close()
    await fake.close()
    await endpoint.stop()


async def open_cashier(w: World, pay_url: str) -> str:
    """The buyer's browser follows the pay URL to Alipay's cashier page."""
    async with aiohttp.ClientSession() as browser, browser.get(pay_url) as page:
        return await page.text()


async def paid(w: World, order_id: str = ORDER, amount_fen: int = 1_280_000) -> FakeTrade:
    session = await w.gateway.create_payment(w.request(order_id, amount_fen))
    assert "确认付款" in await open_cashier(w, session.pay_url)
    trade = await w.fake.pay(APP_ID, order_id)
    await w.fake.notices.drain()
    return trade


def test_the_gateway_implements_both_interfaces(world: World) -> None:
    assert isinstance(world.gateway, PaymentGateway)
    assert isinstance(world.gateway, RefundingGateway)


def test_amounts_are_exact_fen() -> None:
    assert [to_fen(a) for a in ("0.01", "0.29", "12800.00", "12800.1", "7")] == [1, 29, 1_280_000, 1_280_010, 700]
    for bad in ("1e3", "-1.00", "1.001", "01.00", " 1.00", "1,000.00", "", "NaN", "1."):
        with pytest.raises(ValueError):
            to_fen(bad)
    assert [yuan(f) for f in (1, 29, 1_280_000, 100)] == ["0.01", "0.29", "12800.00", "1.00"]


def test_keys_load_from_pem_or_the_bare_base64_alipay_gives() -> None:
    import base64

    from cryptography.hazmat.primitives import serialization

    key = new_rsa_key()
    der_private = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    der_public = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    pem_public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    gateway = alipay_gateway(app_id=APP_ID, app_private_key=base64.b64encode(der_private).decode(),
                             alipay_public_key=base64.b64encode(der_public).decode(), clock=FixedClock())
    assert gateway.name == "alipay"
    alipay_gateway(app_id=APP_ID, app_private_key=key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()).decode(),
        alipay_public_key=pem_public.decode(), clock=FixedClock())


# --- paying --------------------------------------------------------------------------------------


async def test_page_pay_gives_a_signed_url_and_the_paid_notice_is_verified(world: World) -> None:
    w = world
    session = await w.gateway.create_payment(w.request())
    assert session.device == "pc" and session.pay_url.startswith(w.fake.gateway_url + "?")
    params = dict(parse_qsl(urlsplit(session.pay_url).query))
    assert params["method"] == "alipay.trade.page.pay" and params["sign_type"] == "RSA2" and params["charset"] == "utf-8"
    assert rsa_verify(World.app_key.public_key(), params["sign"], sign_content(params, leave_out=REQUEST_UNSIGNED))
    biz = json.loads(params["biz_content"])
    assert biz["total_amount"] == "12800.00" and biz["product_code"] == "FAST_INSTANT_TRADE_PAY" and biz["out_trade_no"] == ORDER
    assert params["notify_url"] == w.endpoint.url and params["return_url"] == "https://shop.example/checkout/t/result"
    assert await w.gateway.query(ORDER) is None  # the buyer has not reached Alipay yet

    assert "确认付款" in await open_cashier(w, session.pay_url)
    created = await w.gateway.query(ORDER)
    assert created is not None and (created.status, created.trade_status) == ("created", "WAIT_BUYER_PAY")
    async with (  # 确认付款, and back to our result page
        aiohttp.ClientSession() as browser,
        browser.post(f"{w.fake.base_url}/fake/pay/{APP_ID}/{ORDER}", allow_redirects=False) as done,
    ):
        back = done.headers["Location"]
    assert back.startswith("https://shop.example/checkout/t/result?")
    returned = dict(parse_qsl(urlsplit(back).query))
    assert rsa_verify(w.fake.alipay_public_key, returned["sign"], sign_content(returned, leave_out=NOTICE_UNSIGNED))

    await w.fake.notices.drain()
    (notice,) = w.endpoint.payments
    trade = w.fake.trade(APP_ID, ORDER)
    assert trade is not None
    assert (notice.order_id, notice.amount_fen, notice.currency, notice.payment_id) == (ORDER, 1_280_000, "CNY", trade.trade_no)
    assert notice.paid_at == w.clock.now()
    (delivery,) = w.fake.notices.deliveries
    assert delivery.accepted and delivery.answer == "success"


async def test_wap_pay_gives_a_signed_url_for_phones(world: World) -> None:
    w = world
    session = await w.gateway.create_payment(w.request(device="wap", quit_url="https://shop.example/checkout/t"))
    params = dict(parse_qsl(urlsplit(session.pay_url).query))
    biz = json.loads(params["biz_content"])
    assert params["method"] == "alipay.trade.wap.pay" and biz["product_code"] == "QUICK_WAP_WAY"
    assert biz["quit_url"] == "https://shop.example/checkout/t"
    assert "确认付款" in await open_cashier(w, session.pay_url)
    trade = w.fake.trade(APP_ID, ORDER)
    assert trade is not None and trade.product_code == "QUICK_WAP_WAY"


async def test_a_pay_url_changed_on_the_way_is_refused_by_alipay(world: World) -> None:
    w = world
    session = await w.gateway.create_payment(w.request())
    params = dict(parse_qsl(urlsplit(session.pay_url).query))
    biz = json.loads(params["biz_content"])
    params["biz_content"] = json.dumps({**biz, "total_amount": "0.01"}, ensure_ascii=False, separators=(",", ":"))
    page = await open_cashier(w, f"{w.fake.gateway_url}?{urlencode(params)}")
    assert "isv.invalid-signature" in page and w.fake.trade(APP_ID, ORDER) is None
    impostor = w.gateway_with(app_private_key=new_rsa_key())
    page = await open_cashier(w, (await impostor.create_payment(w.request())).pay_url)
    assert "isv.invalid-signature" in page and w.fake.trade(APP_ID, ORDER) is None


async def test_an_api_request_signed_with_another_key_is_refused_by_alipay(world: World) -> None:
    w = world
    impostor = w.gateway_with(app_private_key=new_rsa_key())
    try:
        with pytest.raises(ProviderError) as refused:
            await impostor.query(ORDER)
        assert "isv.invalid-signature" in str(refused.value)
        assert w.fake.requests == [("alipay.trade.query", "40002")]
    finally:
        await impostor.close()


# --- notices that must be refused ---------------------------------------------------------------


async def refused_over_http(w: World, body: bytes) -> str:
    before = len(w.endpoint.refused)
    async with aiohttp.ClientSession() as client, client.post(w.endpoint.url, data=body,
                           headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}) as resp:
        assert await resp.text() == "failure"
    assert len(w.endpoint.refused) == before + 1
    return w.endpoint.refused[-1]


async def test_forged_and_tampered_notices_are_refused_and_nothing_is_accepted(world: World) -> None:
    w = world
    session = await w.gateway.create_payment(w.request())
    await open_cashier(w, session.pay_url)
    trade = w.fake.trade(APP_ID, ORDER)
    assert trade is not None
    trade.trade_status, trade.gmt_payment = "TRADE_SUCCESS", w.clock.now()
    params = w.fake.notice_params(trade)
    genuine = w.fake.sign_notice(params)
    assert w.gateway.verify_notice(genuine, {}).amount_fen == 1_280_000

    def changed(**change: str) -> bytes:
        """The genuine notice with fields changed and its signature kept."""
        fields = dict(parse_qsl(genuine.decode()))
        return urlencode({**fields, **change}).encode()

    three_days_ago = (w.clock.now() - timedelta(days=3)).astimezone(timezone(timedelta(hours=8)))
    cases: list[tuple[str, bytes, str]] = [
        ("signed with another key", w.fake.sign_notice({**params, "total_amount": "0.01"}, key=new_rsa_key()), "bad_signature"),
        ("amount changed", changed(total_amount="0.01"), "bad_signature"),
        ("out_trade_no changed", changed(out_trade_no="o999999999999"), "bad_signature"),
        ("status changed", changed(trade_status="TRADE_FINISHED"), "bad_signature"),
        ("sign_type RSA (SHA1)", changed(sign_type="RSA"), "bad_signature"),
        ("no signature", urlencode({k: v for k, v in parse_qsl(genuine.decode()) if k != "sign"}).encode(), "bad_signature"),
        ("a parameter twice", genuine + b"&total_amount=0.01", "malformed"),
        ("another app's payment", w.fake.sign_notice({**params, "app_id": "2021000000000000"}), "malformed"),
        ("another seller's payment", w.fake.sign_notice({**params, "seller_id": "2088000000000000"}), "malformed"),
        ("three decimals", w.fake.sign_notice({**params, "total_amount": "12800.001"}), "malformed"),
        ("a float's amount", w.fake.sign_notice({**params, "total_amount": "1.28e6"}), "malformed"),
        ("stale notify_time",
         w.fake.sign_notice({**params, "notify_time": three_days_ago.strftime("%Y-%m-%d %H:%M:%S")}), "stale"),
        ("from the future",
         w.fake.sign_notice({**params, "notify_time": (three_days_ago + timedelta(days=4)).strftime("%Y-%m-%d %H:%M:%S")}),
         "stale"),
        ("not paid", w.fake.sign_notice({**params, "trade_status": "WAIT_BUYER_PAY"}), "malformed"),
        ("not a form", b"\xff\xfe{}", "malformed"),
    ]
    for label, body, reason in cases:
        with pytest.raises(NoticeRejected) as refused:
            w.gateway.verify_notice(body, {})
        assert refused.value.reason == reason, label
        if label != "not paid":  # that one is routed as "other" and acknowledged: nothing to store
            assert await refused_over_http(w, body) == reason, label
    assert w.endpoint.payments == []


async def test_the_age_limit_is_a_parameter(world: World) -> None:
    w = world
    trade = await paid(w)
    body = w.fake.notice_for(trade)[0]
    strict = w.gateway_with(notice_max_age=timedelta(minutes=5))
    w.clock.advance(minutes=6)
    with pytest.raises(NoticeRejected) as late:
        strict.verify_notice(body, {})
    assert late.value.reason == "stale"
    assert w.gateway.verify_notice(body, {}).order_id == ORDER  # within the 26 hours Alipay retries
    w.clock.advance(hours=27)
    with pytest.raises(NoticeRejected):
        w.gateway.verify_notice(body, {})


async def test_a_replayed_notice_with_another_signature_is_refused(world: World) -> None:
    w = world
    trade = await paid(w)
    other = await paid(w, "o0f0e0d0c0b0a", 990_000)
    mine = dict(parse_qsl(w.fake.notice_for(trade)[0].decode()))
    theirs = dict(parse_qsl(w.fake.notice_for(other)[0].decode()))
    with pytest.raises(NoticeRejected) as refused:
        w.gateway.verify_notice(urlencode({**mine, "sign": theirs["sign"]}).encode(), {})
    assert refused.value.reason == "bad_signature"
    assert [n.order_id for n in w.endpoint.payments] == [ORDER, "o0f0e0d0c0b0a"]


async def test_an_unacknowledged_notice_is_sent_again_until_acknowledged(world: World) -> None:
    w = world
    w.endpoint.fail_next = 2
    await paid(w)
    assert [(d.attempt, d.answer, d.accepted) for d in w.fake.notices.deliveries] == [
        (1, "failure", False), (2, "failure", False), (3, "success", True)]
    assert len({d.body for d in w.fake.notices.deliveries}) == 3  # each delivery signed afresh
    assert len(w.endpoint.payments) == 1


async def test_alipay_gives_up_after_eight_deliveries(world: World) -> None:
    w = world
    w.endpoint.fail_next = 99
    await paid(w)
    assert [d.attempt for d in w.fake.notices.deliveries] == list(range(1, 9))
    assert w.endpoint.payments == []


def test_notices_are_routed_by_kind(world: World) -> None:
    w = world
    trade = FakeTrade(app_id=APP_ID, out_trade_no=ORDER, trade_no="2026010522001000000000000001", subject="x",
                      total=100, product_code="FAST_INSTANT_TRADE_PAY", notify_url="", return_url="",
                      time_expire=None, gmt_create=w.clock.now(), trade_status="TRADE_CLOSED")
    closed = w.fake.sign_notice(w.fake.notice_params(trade))
    assert w.gateway.notice_kind(closed, {}) == "other"
    with pytest.raises(NoticeRejected):
        w.gateway.verify_notice(closed, {})
    trade.trade_status = "TRADE_SUCCESS"
    assert w.gateway.notice_kind(w.fake.sign_notice(w.fake.notice_params(trade)), {}) == "payment"


# --- query and close -----------------------------------------------------------------------------


async def test_query_follows_the_payment(world: World) -> None:
    w = world
    trade = await paid(w)
    status = await w.gateway.query(ORDER)
    assert status is not None
    assert (status.status, status.payment_id, status.amount_fen, status.paid_at) == \
        ("paid", trade.trade_no, 1_280_000, w.clock.now())


async def test_close_an_unpaid_trade_and_it_cannot_be_paid(world: World) -> None:
    w = world
    assert await w.gateway.close_payment("o0000000000000") == "not_found"  # never opened
    session = await w.gateway.create_payment(w.request())
    await open_cashier(w, session.pay_url)
    assert await w.gateway.close_payment(ORDER) == "closed"
    status = await w.gateway.query(ORDER)
    assert status is not None and (status.status, status.trade_status) == ("cancelled", "TRADE_CLOSED")
    with pytest.raises(ValueError):
        await w.fake.pay(APP_ID, ORDER)
    assert await w.gateway.close_payment(ORDER) == "closed"  # again: still closed
    await paid(w, "o0f0e0d0c0b0a")
    assert await w.gateway.close_payment("o0f0e0d0c0b0a") == "already_paid"


async def test_an_expired_trade_cannot_be_paid(world: World) -> None:
    w = world
    session = await w.gateway.create_payment(w.request(expires_at=w.clock.now() + timedelta(minutes=3)))
    await open_cashier(w, session.pay_url)
    w.clock.advance(minutes=4)
    with pytest.raises(ValueError):
        await w.fake.pay(APP_ID, ORDER)


# --- refunds -------------------------------------------------------------------------------------


async def test_refunds_full_and_partial_once_per_refund_id(world: World) -> None:
    w = world
    trade = await paid(w, amount_fen=10_000)
    first = await w.gateway.refund(order_id=ORDER, refund_id="rf_0a1b2c3d4e5f", amount_fen=3_000, total_fen=10_000,
                                   reason="订单已过期")
    assert (first.refund_id, first.amount_fen, first.status, first.payment_id) == \
        ("rf_0a1b2c3d4e5f", 3_000, "succeeded", trade.trade_no)
    again = await w.gateway.refund(order_id=ORDER, refund_id="rf_0a1b2c3d4e5f", amount_fen=3_000, total_fen=10_000,
                                   reason="订单已过期")
    assert (again.amount_fen, again.status) == (3_000, "succeeded")
    assert list(trade.refunds) == ["rf_0a1b2c3d4e5f"] and trade.refunded == 3_000  # one refund at Alipay
    with pytest.raises(RefundRefused):  # the same id for another amount
        await w.gateway.refund(order_id=ORDER, refund_id="rf_0a1b2c3d4e5f", amount_fen=4_000, total_fen=10_000, reason="")
    rest = await w.gateway.refund(order_id=ORDER, refund_id="rf_ffeeddccbbaa", amount_fen=7_000, total_fen=10_000, reason="")
    assert rest.status == "succeeded"
    with pytest.raises(RefundRefused) as nothing_left:
        await w.gateway.refund(order_id=ORDER, refund_id="rf_000000000001", amount_fen=1, total_fen=10_000, reason="")
    assert nothing_left.value.code in ("ACQ.TRADE_STATUS_ERROR", "ACQ.REFUND_AMT_NOT_EQUAL_TOTAL")
    assert trade.refunded == 10_000 and trade.trade_status == "TRADE_CLOSED"

    await w.fake.notices.drain()
    assert [(n.refund_id, n.refunded_total_fen, n.status, n.order_id, n.payment_id) for n in w.endpoint.refunds] == [
        ("rf_0a1b2c3d4e5f", 3_000, "succeeded", ORDER, trade.trade_no),
        ("rf_ffeeddccbbaa", 10_000, "succeeded", ORDER, trade.trade_no),
    ]
    assert w.endpoint.refunds[0].refunded_at == w.clock.now()
    found = await w.gateway.query_refund(order_id=ORDER, refund_id="rf_ffeeddccbbaa")
    assert found is not None and found.amount_fen == 7_000
    assert await w.gateway.query_refund(order_id=ORDER, refund_id="rf_unknown") is None


async def test_a_partial_refund_over_what_is_left_is_refused(world: World) -> None:
    w = world
    trade = await paid(w, amount_fen=10_000)
    await w.gateway.refund(order_id=ORDER, refund_id="rf_a", amount_fen=6_000, total_fen=10_000, reason="")
    with pytest.raises(RefundRefused) as refused:
        await w.gateway.refund(order_id=ORDER, refund_id="rf_b", amount_fen=5_000, total_fen=10_000, reason="")
    assert refused.value.code == "ACQ.REFUND_AMT_NOT_EQUAL_TOTAL" and trade.refunded == 6_000


async def test_an_unpaid_trade_cannot_be_refunded(world: World) -> None:
    w = world
    session = await w.gateway.create_payment(w.request())
    await open_cashier(w, session.pay_url)
    with pytest.raises(RefundRefused):
        await w.gateway.refund(order_id=ORDER, refund_id="rf_0a1b2c3d4e5f", amount_fen=1, total_fen=1_280_000, reason="")


async def test_a_forged_refund_notice_is_refused(world: World) -> None:
    w = world
    trade = await paid(w, amount_fen=10_000)
    await w.gateway.refund(order_id=ORDER, refund_id="rf_0a1b2c3d4e5f", amount_fen=10_000, total_fen=10_000, reason="")
    await w.fake.notices.drain()
    refund = trade.refunds["rf_0a1b2c3d4e5f"]
    params = w.fake.notice_params(trade, refund)
    body = w.fake.sign_notice(params)
    assert w.gateway.notice_kind(body, {}) == "refund"
    assert w.gateway.verify_refund_notice(body, {}).refunded_total_fen == 10_000
    for forged in (w.fake.sign_notice(params, key=new_rsa_key()),
                   body.replace(b"out_biz_no=rf_0a1b2c3d4e5f", b"out_biz_no=rf_000000000000")):
        with pytest.raises(NoticeRejected):
            w.gateway.verify_refund_notice(forged, {})
    with pytest.raises(NoticeRejected):  # a refund notice is no payment notice
        w.gateway.verify_notice(body, {})


# --- answers that must not be trusted -----------------------------------------------------------


async def test_an_answer_with_a_bad_signature_is_rejected(world: World) -> None:
    w = world
    await paid(w, amount_fen=10_000)
    w.fake.tamper_answers = True  # the same JSON with other characters: the signed text changed
    with pytest.raises(ResponseNotTrusted):
        await w.gateway.query(ORDER)
    with pytest.raises(ResponseNotTrusted):
        await w.gateway.query("o0000000000000")  # even "no such trade" must be Alipay's word
    w.fake.tamper_answers = False
    w.fake.answer_key = new_rsa_key()  # signed, but not by Alipay
    with pytest.raises(ResponseNotTrusted):
        await w.gateway.refund(order_id=ORDER, refund_id="rf_0a1b2c3d4e5f", amount_fen=100, total_fen=10_000, reason="")
    with pytest.raises(ResponseNotTrusted):
        await w.gateway.close_payment(ORDER)
    w.fake.answer_key = None
    status = await w.gateway.query(ORDER)
    assert status is not None and status.status == "paid"


def test_the_acks_are_what_alipay_expects(world: World) -> None:
    ok = world.gateway.ack(True)
    assert (ok.status, ok.body, ok.content_type) == (200, "success", "text/plain")
    refused = world.gateway.ack(False, "bad_signature")
    assert refused.body == "failure" and refused.status == 400
