"""WeChat Pay v3 gateway against the local fake WeChat Pay, over real HTTP: signed requests,
signed answers, AES-GCM notices posted to a notify endpoint, refunds. Keys are made here."""
from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from esign_devkit.testing.fake_provider import MerchantEndpoint
from esign_devkit.testing.fake_wechat_pay import FakeWechatPay, new_rsa_key
from pydantic import ValidationError

from config.settings import Settings
from services.clock import FixedClock
from services.payment_gateway import NoticeRejected, PaymentGateway, PaymentRequest
from services.payment_refunds import ProviderError, RefundingGateway, RefundRefused, ResponseNotTrusted
from services.wechat_oauth import OAuthFailed, WechatOAuth
from services.wechat_pay import WechatPayGateway, WechatPayRequest, rsa_sign

MCHID, APPID, SERIAL = "1900000109", "wxd678efh567hg6787", "5157F09EFDC096DE15EBE81A47057A7232F1B8E1"
FAST = (0.05, 0.05, 0.05)  # WeChat Pay's hours of retries, compressed


@dataclass
class World:
    fake: FakeWechatPay
    gateway: WechatPayGateway
    endpoint: MerchantEndpoint
    clock: FixedClock

    def request(self, order_id: str = "o1a2b3c4d5e6f", amount_fen: int = 1_280_000, **extra: object) -> WechatPayRequest:
        return WechatPayRequest(order_id=order_id, amount_fen=amount_fen, currency="CNY",
                                description="腾讯电子签 专业版 1年", notify_url=self.endpoint.url,
                                return_url="https://shop.example/checkout/t/result", **extra)

    def gateway_with(self, **change: object) -> WechatPayGateway:
        args: dict[str, object] = {"mchid": MCHID, "appid": APPID, "merchant_serial": SERIAL,
                                   "merchant_key": self.merchant_key, "apiv3_key": self.fake.apiv3_key,
                                   "platform_keys": {self.fake.platform_serial: self.fake.platform_public_key},
                                   "clock": self.clock, "api_base": self.fake.base_url,
                                   "refund_notify_url": self.endpoint.url}
        args.update(change)
        return WechatPayGateway(**args)  # type: ignore[arg-type]

    merchant_key = new_rsa_key()


@pytest.fixture
async def world() -> AsyncIterator[World]:
    clock = FixedClock(datetime.now(UTC).replace(microsecond=0))
    fake = FakeWechatPay(clock=clock, retry_schedule=FAST)
    await fake.start()
    fake.add_merchant(mchid=MCHID, appid=APPID, serial=SERIAL, public_key=World.merchant_key.public_key())
    endpoint = MerchantEndpoint(gateway=None)
    w = World(fake, None, endpoint, clock)  # type: ignore[arg-type]
    await endpoint.start()
    w.gateway = endpoint.gateway = w.gateway_with()
    yield w
    await w.gateway.close()
    await fake.close()
    await endpoint.stop()


async def paid(w: World, order_id: str = "o1a2b3c4d5e6f", amount_fen: int = 1_280_000):
    await w.gateway.create_payment(w.request(order_id, amount_fen))
    tx = await w.fake.pay(MCHID, order_id)
    await w.fake.notices.drain()
    return tx


def test_the_gateway_implements_both_interfaces(world: World) -> None:
    assert isinstance(world.gateway, PaymentGateway)
    assert isinstance(world.gateway, RefundingGateway)


# --- paying --------------------------------------------------------------------------------------


async def test_native_gives_a_code_url_and_the_paid_notice_is_verified(world: World) -> None:
    w = world
    session = await w.gateway.create_payment(w.request())
    assert session.scene == "native" and session.code_url and session.code_url.startswith("weixin://wxpay/bizpayurl?pr=")
    assert session.pay_url == session.code_url
    assert w.fake.requests == [("POST", "/v3/pay/transactions/native", 200)]  # signed: accepted
    tx = w.fake.transaction(MCHID, "o1a2b3c4d5e6f")
    assert tx is not None and tx.total == 1_280_000 and tx.trade_type == "NATIVE" and tx.time_expire is not None
    assert tx.time_expire == w.clock.now() + timedelta(minutes=30)
    assert await w.gateway.create_payment(w.request()) == session  # asked again: the same QR

    await w.fake.pay(MCHID, "o1a2b3c4d5e6f")
    await w.fake.notices.drain()
    (notice,) = w.endpoint.payments
    assert (notice.order_id, notice.amount_fen, notice.currency, notice.status) == ("o1a2b3c4d5e6f", 1_280_000, "CNY", "paid")
    assert notice.payment_id == tx.transaction_id and notice.paid_at == w.clock.now()
    (delivery,) = w.fake.notices.deliveries
    assert delivery.accepted and delivery.status == 200 and json.loads(delivery.answer) == {"code": "SUCCESS", "message": "成功"}


async def test_a_plain_payment_request_is_native(world: World) -> None:
    w = world
    plain = PaymentRequest(**w.request().model_dump(include=set(PaymentRequest.model_fields)))
    session = await w.gateway.create_payment(plain)
    assert session.scene == "native" and session.code_url


async def test_h5_gives_an_h5_url_that_returns_the_buyer(world: World) -> None:
    w = world
    with pytest.raises(ValueError):
        await w.gateway.create_payment(w.request(scene="h5"))  # no buyer IP
    session = await w.gateway.create_payment(w.request(scene="h5", client_ip="203.0.113.7"))
    assert session.h5_url and session.h5_url.startswith(f"{w.fake.base_url}/cgi-bin/mmpayweb-bin/checkmweb?prepay_id=wx")
    assert session.pay_url.startswith(session.h5_url + "&redirect_url=https%3A%2F%2Fshop.example%2F")
    tx = w.fake.transaction(MCHID, "o1a2b3c4d5e6f")
    assert tx is not None and tx.trade_type == "MWEB" and tx.client_ip == "203.0.113.7"
    # The buyer's browser: WeChat's page, pay, and back to our result page.
    async with aiohttp.ClientSession() as browser:
        async with browser.get(session.pay_url) as page:
            assert page.status == 200 and "确认支付" in await page.text()
        async with browser.post(f"{w.fake.base_url}/fake/pay/{MCHID}/o1a2b3c4d5e6f",
                                data={"redirect_url": "https://shop.example/checkout/t/result"},
                                allow_redirects=False) as done:
            assert done.status == 303 and done.headers["Location"] == "https://shop.example/checkout/t/result"
    await w.fake.notices.drain()
    assert [n.order_id for n in w.endpoint.payments] == ["o1a2b3c4d5e6f"]


async def test_jsapi_gives_signed_parameters_for_the_wechat_browser(world: World) -> None:
    w = world
    with pytest.raises(ValueError):
        await w.gateway.create_payment(w.request(scene="jsapi"))  # no openid
    session = await w.gateway.create_payment(w.request(scene="jsapi", openid="oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"))
    params = session.jsapi_params
    assert params is not None and session.prepay_id and session.pay_url == ""
    assert params["appId"] == APPID and params["package"] == f"prepay_id={session.prepay_id}" and params["signType"] == "RSA"
    message = f"{APPID}\n{params['timeStamp']}\n{params['nonceStr']}\n{params['package']}\n".encode()
    World.merchant_key.public_key().verify(base64.b64decode(params["paySign"]), message, padding.PKCS1v15(), hashes.SHA256())
    tx = w.fake.transaction(MCHID, "o1a2b3c4d5e6f")
    assert tx is not None and tx.trade_type == "JSAPI" and tx.openid == "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"


async def test_the_same_order_in_another_scene_or_amount_is_refused_by_wechat(world: World) -> None:
    w = world
    await w.gateway.create_payment(w.request())
    with pytest.raises(ProviderError) as refused:
        await w.gateway.create_payment(w.request(amount_fen=1))
    assert refused.value.code == "OUT_TRADE_NO_USED"


async def test_a_request_signed_with_another_key_is_refused_by_the_provider(world: World) -> None:
    w = world
    impostor = w.gateway_with(merchant_key=new_rsa_key())
    try:
        with pytest.raises(ProviderError) as refused:
            await impostor.create_payment(w.request())
        assert (refused.value.code, refused.value.status) == ("SIGN_ERROR", 401)
        assert w.fake.transaction(MCHID, "o1a2b3c4d5e6f") is None
    finally:
        await impostor.close()


# --- notices that must be refused ---------------------------------------------------------------


async def refused_over_http(w: World, body: bytes, headers: dict[str, str]) -> tuple[int, str]:
    """Post a notice to the endpoint as WeChat Pay would; its answer and the refusal."""
    before = len(w.endpoint.refused)
    async with aiohttp.ClientSession() as client, client.post(w.endpoint.url, data=body, headers=headers) as resp:
        status, answer = resp.status, await resp.json()
    assert answer["code"] == "FAIL" and len(w.endpoint.refused) == before + 1
    return status, w.endpoint.refused[-1]


async def test_forged_and_tampered_notices_are_refused_and_nothing_is_accepted(world: World) -> None:
    w = world
    await w.gateway.create_payment(w.request())
    tx = w.fake.transaction(MCHID, "o1a2b3c4d5e6f")
    assert tx is not None
    tx.trade_state, tx.transaction_id, tx.success_time = "SUCCESS", "4200000000000000000000000001", w.clock.now()
    resource = w.fake.transaction_resource(tx)
    body, headers = w.fake.notice_for(tx)
    assert w.gateway.verify_notice(body, headers).amount_fen == 1_280_000  # the genuine one verifies
    assert w.gateway.verify_notice(body, {k.lower(): v for k, v in headers.items()}).order_id == "o1a2b3c4d5e6f"

    def signed(content: dict, **sign: object) -> tuple[bytes, dict[str, str]]:
        forged = w.fake.notice_body("TRANSACTION.SUCCESS", content, original_type="transaction",
                                    apiv3_key=sign.pop("apiv3_key", None))  # type: ignore[arg-type]
        return forged, w.fake.signed_headers(forged, **sign)  # type: ignore[arg-type]

    other_key = new_rsa_key()
    cheaper = {**resource, "amount": {**resource["amount"], "total": 1}}
    envelope = json.loads(body)
    flipped = base64.b64decode(envelope["resource"]["ciphertext"])
    flipped = bytes([flipped[0] ^ 1]) + flipped[1:]
    in_ciphertext = json.dumps({**envelope, "resource": {**envelope["resource"],
                                                          "ciphertext": base64.b64encode(flipped).decode()}}).encode()
    cases: list[tuple[str, bytes, dict[str, str], str]] = [
        ("signed with another key", *signed(cheaper, key=other_key), "bad_signature"),
        ("another serial", *signed(resource, serial="PUB_KEY_ID_0000"), "bad_signature"),
        ("no signature", body, {k: v for k, v in headers.items() if k != "Wechatpay-Signature"}, "bad_signature"),
        ("body changed after signing",
         body.replace(b'"TRANSACTION.SUCCESS"', b'"TRANSACTION.SUCCESS" '), headers, "bad_signature"),
        ("ciphertext changed, signed by WeChat Pay", in_ciphertext, w.fake.signed_headers(in_ciphertext), "bad_signature"),
        ("amount re-encrypted with another APIv3 key", *signed(cheaper, apiv3_key=b"k" * 32), "bad_signature"),
        ("out_trade_no re-encrypted with another APIv3 key",
         *signed({**resource, "out_trade_no": "o999999999999"}, apiv3_key=b"k" * 32), "bad_signature"),
        ("stale timestamp", *signed(resource, timestamp=int(w.clock.now().timestamp()) - 600), "stale"),
        ("from the future", *signed(resource, timestamp=int(w.clock.now().timestamp()) + 600), "stale"),
        ("another merchant's payment", *signed({**resource, "mchid": "1900000999"}), "malformed"),
        ("not paid", *signed({**resource, "trade_state": "NOTPAY"}), "malformed"),
        ("no amount", *signed({k: v for k, v in resource.items() if k != "amount"}), "malformed"),
    ]
    for label, forged_body, forged_headers, reason in cases:
        with pytest.raises(NoticeRejected) as refused:
            w.gateway.verify_notice(forged_body, forged_headers)
        assert refused.value.reason == reason, label
        status, seen = await refused_over_http(w, forged_body, forged_headers)
        assert (status, seen) == (400, reason), label
    assert w.endpoint.payments == []


async def test_a_replayed_notice_is_refused(world: World) -> None:
    w = world
    tx = await paid(w)
    (delivery,) = w.fake.notices.deliveries
    body = delivery.body
    captured = w.fake.signed_headers(body)  # the genuine notice as an eavesdropper kept it
    assert w.gateway.verify_notice(body, captured).payment_id == tx.transaction_id

    other = await paid(w, "o0f0e0d0c0b0a", 990_000)
    other_headers = w.fake.notice_for(other)[1]
    # Another notice's signature on this body, and this signature under a fresh timestamp.
    for headers in (other_headers, {**captured, "Wechatpay-Timestamp": str(int(w.clock.now().timestamp()) + 1)}):
        with pytest.raises(NoticeRejected) as refused:
            w.gateway.verify_notice(body, headers)
        assert refused.value.reason == "bad_signature"
    w.clock.advance(minutes=6)
    with pytest.raises(NoticeRejected) as late:
        w.gateway.verify_notice(body, captured)
    assert late.value.reason == "stale"
    assert [n.order_id for n in w.endpoint.payments] == ["o1a2b3c4d5e6f", "o0f0e0d0c0b0a"]  # only the real ones


async def test_an_unacknowledged_notice_is_sent_again_until_acknowledged(world: World) -> None:
    w = world
    w.endpoint.fail_next = 2  # storing fails twice: the endpoint answers 500 FAIL
    await paid(w)
    attempts = [(d.attempt, d.status, d.accepted) for d in w.fake.notices.deliveries]
    assert attempts == [(1, 500, False), (2, 500, False), (3, 200, True)]
    assert len(w.endpoint.payments) == 1
    bodies = {d.body for d in w.fake.notices.deliveries}
    assert len(bodies) == 3  # each attempt is a fresh notice (new nonce), signed afresh


async def test_the_retries_stop_after_the_schedule(world: World) -> None:
    w = world
    w.endpoint.fail_next = 99
    await paid(w)
    assert [d.accepted for d in w.fake.notices.deliveries] == [False] * (1 + len(FAST))
    assert w.endpoint.payments == []


# --- query and close -----------------------------------------------------------------------------


async def test_query_follows_the_payment(world: World) -> None:
    w = world
    assert await w.gateway.query("o1a2b3c4d5e6f") is None
    await w.gateway.create_payment(w.request())
    created = await w.gateway.query("o1a2b3c4d5e6f")
    assert created is not None and (created.status, created.trade_state, created.amount_fen) == ("created", "NOTPAY", 1_280_000)
    tx = await paid(w)
    status = await w.gateway.query("o1a2b3c4d5e6f")
    assert status is not None and (status.status, status.payment_id, status.paid_at) == ("paid", tx.transaction_id, w.clock.now())


async def test_close_an_unpaid_order_and_it_cannot_be_paid(world: World) -> None:
    w = world
    await w.gateway.create_payment(w.request())
    assert await w.gateway.close_payment("o1a2b3c4d5e6f") == "closed"
    status = await w.gateway.query("o1a2b3c4d5e6f")
    assert status is not None and status.status == "cancelled"
    with pytest.raises(ValueError):
        await w.fake.pay(MCHID, "o1a2b3c4d5e6f")
    assert await w.gateway.close_payment("o1a2b3c4d5e6f") == "closed"  # again: still closed
    assert await w.gateway.close_payment("o0000000000000") == "not_found"
    await paid(w, "o0f0e0d0c0b0a")
    assert await w.gateway.close_payment("o0f0e0d0c0b0a") == "already_paid"


# --- refunds -------------------------------------------------------------------------------------


async def test_refunds_full_and_partial_once_per_refund_id(world: World) -> None:
    w = world
    tx = await paid(w, amount_fen=10_000)
    first = await w.gateway.refund(order_id="o1a2b3c4d5e6f", refund_id="rf_0a1b2c3d4e5f", amount_fen=3_000,
                                   total_fen=10_000, reason="订单已过期")
    assert (first.refund_id, first.amount_fen, first.status, first.payment_id) == \
        ("rf_0a1b2c3d4e5f", 3_000, "processing", tx.transaction_id)
    again = await w.gateway.refund(order_id="o1a2b3c4d5e6f", refund_id="rf_0a1b2c3d4e5f", amount_fen=3_000,
                                   total_fen=10_000, reason="订单已过期")
    assert again.provider_refund_id == first.provider_refund_id
    assert len(w.fake.refunds) == 1  # one refund at WeChat Pay
    with pytest.raises(RefundRefused):  # the same id for another amount
        await w.gateway.refund(order_id="o1a2b3c4d5e6f", refund_id="rf_0a1b2c3d4e5f", amount_fen=4_000,
                               total_fen=10_000, reason="")
    rest = await w.gateway.refund(order_id="o1a2b3c4d5e6f", refund_id="rf_ffeeddccbbaa", amount_fen=7_000,
                                  total_fen=10_000, reason="")
    assert rest.amount_fen == 7_000
    with pytest.raises(RefundRefused):  # nothing is left to refund
        await w.gateway.refund(order_id="o1a2b3c4d5e6f", refund_id="rf_000000000001", amount_fen=1,
                               total_fen=10_000, reason="")
    with pytest.raises(ValueError):
        await w.gateway.refund(order_id="o1a2b3c4d5e6f", refund_id="rf_000000000002", amount_fen=10_001,
                               total_fen=10_000, reason="")
    assert sum(r.refund for r in w.fake.refunds.values()) == 10_000

    await w.fake.notices.drain()
    refunds = sorted(w.endpoint.refunds, key=lambda n: n.amount_fen or 0)
    assert [(n.refund_id, n.amount_fen, n.status, n.order_id, n.payment_id) for n in refunds] == [
        ("rf_0a1b2c3d4e5f", 3_000, "succeeded", "o1a2b3c4d5e6f", tx.transaction_id),
        ("rf_ffeeddccbbaa", 7_000, "succeeded", "o1a2b3c4d5e6f", tx.transaction_id),
    ]
    done = await w.gateway.query_refund(order_id="o1a2b3c4d5e6f", refund_id="rf_0a1b2c3d4e5f")
    assert done is not None and done.status == "succeeded" and done.refunded_at == w.clock.now()
    assert await w.gateway.query_refund(order_id="o1a2b3c4d5e6f", refund_id="rf_unknown") is None
    status = await w.gateway.query("o1a2b3c4d5e6f")
    assert status is not None and (status.status, status.trade_state) == ("paid", "REFUND")


async def test_an_unpaid_order_cannot_be_refunded(world: World) -> None:
    w = world
    await w.gateway.create_payment(w.request())
    with pytest.raises(RefundRefused):
        await w.gateway.refund(order_id="o1a2b3c4d5e6f", refund_id="rf_0a1b2c3d4e5f", amount_fen=1,
                               total_fen=1_280_000, reason="")
    assert w.fake.refunds == {}


async def test_a_forged_refund_notice_is_refused(world: World) -> None:
    w = world
    await paid(w, amount_fen=10_000)
    await w.gateway.refund(order_id="o1a2b3c4d5e6f", refund_id="rf_0a1b2c3d4e5f", amount_fen=10_000,
                           total_fen=10_000, reason="")
    await w.fake.notices.drain()
    refund = w.fake.refunds[(MCHID, "rf_0a1b2c3d4e5f")]
    body, headers = w.fake.refund_notice_for(refund)
    assert w.gateway.notice_kind(body, headers) == "refund"
    assert w.gateway.verify_refund_notice(body, headers).status == "succeeded"
    forged = w.fake.notice_body("REFUND.SUCCESS", w.fake.refund_resource(refund), original_type="refund")
    for bad_headers in (w.fake.signed_headers(forged, key=new_rsa_key()),
                        w.fake.signed_headers(forged, timestamp=int(w.clock.now().timestamp()) - 3600)):
        with pytest.raises(NoticeRejected):
            w.gateway.verify_refund_notice(forged, bad_headers)
    # A payment notice is not a refund notice, nor the other way round.
    tx_body, tx_headers = w.fake.notice_for(w.fake.transactions[(MCHID, "o1a2b3c4d5e6f")])
    with pytest.raises(NoticeRejected):
        w.gateway.verify_refund_notice(tx_body, tx_headers)
    with pytest.raises(NoticeRejected):
        w.gateway.verify_notice(body, headers)


# --- answers that must not be trusted -----------------------------------------------------------


async def test_an_answer_with_a_bad_signature_is_rejected(world: World) -> None:
    w = world
    await w.gateway.create_payment(w.request())
    w.fake.tamper_answers = True
    with pytest.raises(ResponseNotTrusted):
        await w.gateway.query("o1a2b3c4d5e6f")
    with pytest.raises(ResponseNotTrusted):
        await w.gateway.query("o0000000000000")  # even "no such order" must be WeChat Pay's word
    w.fake.tamper_answers = False
    w.fake.answer_key = new_rsa_key()  # signed, but not by WeChat Pay
    with pytest.raises(ResponseNotTrusted):
        await w.gateway.create_payment(w.request("o0f0e0d0c0b0a"))
    with pytest.raises(ResponseNotTrusted):
        await w.gateway.close_payment("o1a2b3c4d5e6f")  # even an empty 204 is signed
    w.fake.answer_key = None
    w.clock.advance(minutes=10)
    stale_gateway = w.gateway_with(clock=FixedClock(w.clock.now() - timedelta(minutes=10)))
    try:  # our clock ten minutes behind WeChat Pay's: its answers look stale
        with pytest.raises(ProviderError):
            await stale_gateway.query("o1a2b3c4d5e6f")
    finally:
        await stale_gateway.close()


def test_the_acks_are_what_wechat_pay_expects(world: World) -> None:
    ok = world.gateway.ack(True)
    assert ok.status == 200 and json.loads(ok.body)["code"] == "SUCCESS"
    refused = world.gateway.ack(False, "bad_signature")
    assert refused.status == 400 and json.loads(refused.body) == {"code": "FAIL", "message": "bad_signature"}
    assert world.gateway.ack(False, "store_failed").status == 500


def test_the_merchant_signature_covers_method_url_time_nonce_and_body(world: World) -> None:
    from services.wechat_pay import parse_authorization, request_message, rsa_verify

    fields = parse_authorization(world.gateway.authorization("POST", "/v3/pay/transactions/native", '{"a":1}'))
    assert fields["mchid"] == MCHID and fields["serial_no"] == SERIAL and len(fields["nonce_str"]) == 32
    message = request_message("POST", "/v3/pay/transactions/native", fields["timestamp"], fields["nonce_str"], '{"a":1}')
    assert rsa_verify(World.merchant_key.public_key(), fields["signature"], message)
    assert not rsa_verify(World.merchant_key.public_key(), fields["signature"], message.replace(b"POST", b"GET"))
    assert rsa_sign(World.merchant_key, message) == fields["signature"]  # PKCS#1 v1.5 is deterministic


async def test_oauth_codes_become_the_openid_once_and_only_with_the_appsecret(world: World) -> None:
    w = world
    w.fake.app_secrets[APPID] = "0123456789abcdef0123456789abcdef"
    oauth = WechatOAuth(appid=APPID, secret="0123456789abcdef0123456789abcdef", clock=w.clock,
                        oauth_base=w.fake.base_url, api_base=w.fake.base_url)
    wrong = WechatOAuth(appid=APPID, secret="not-the-app-secret", clock=w.clock, oauth_base=w.fake.base_url,
                        api_base=w.fake.base_url)
    try:
        async def code() -> str:
            state = oauth.state("o1a2b3c4d5e6f", "browser")
            url = oauth.authorize_url("https://shop.example/checkout/t/wechat/oauth", state)
            async with aiohttp.ClientSession() as wechat, wechat.get(url, allow_redirects=False) as resp:
                assert resp.status == 302
                back = resp.headers["Location"]
            assert back.startswith("https://shop.example/checkout/t/wechat/oauth?code=") and f"state={state}" in back
            return back.split("code=", 1)[1].split("&", 1)[0]

        first = await code()
        with pytest.raises(OAuthFailed) as refused:
            await wrong.openid(first)
        assert refused.value.code == "40125"
        assert await oauth.openid(first) == w.fake.oauth_openid
        with pytest.raises(OAuthFailed) as refused:
            await oauth.openid(first)  # a code is good once
        assert refused.value.code == "40163"
        with pytest.raises(OAuthFailed) as refused:
            await oauth.openid("made-up")
        assert refused.value.code == "40029"
        stale = await code()
        w.clock.advance(seconds=301)
        with pytest.raises(OAuthFailed):
            await oauth.openid(stale)
    finally:
        await oauth.close()
        await wrong.close()


def test_the_oauth_state_is_bound_to_the_order_the_browser_and_its_age(world: World) -> None:
    oauth = WechatOAuth(appid=APPID, secret="s" * 32, clock=world.clock)
    state = oauth.state("o1a2b3c4d5e6f", "browser-1")
    assert len(state) <= 128 and state.isalnum()
    assert oauth.check_state(state, "o1a2b3c4d5e6f", "browser-1") == state[:24]
    assert oauth.check_state(state, "o999999999999", "browser-1") is None
    assert oauth.check_state(state, "o1a2b3c4d5e6f", "browser-2") is None
    assert WechatOAuth(appid=APPID, secret="t" * 32, clock=world.clock).check_state(
        state, "o1a2b3c4d5e6f", "browser-1") is None  # signed with another AppSecret's key
    world.clock.advance(seconds=601)
    assert oauth.check_state(state, "o1a2b3c4d5e6f", "browser-1") is None


def test_jsapi_without_its_appsecret_is_refused_naming_every_missing_setting() -> None:
    with pytest.raises(ValidationError) as refused:
        Settings(_env_file=None, web_gateway="wechat", wechat_jsapi=True, wechat_mchid=MCHID)
    text = str(refused.value)
    assert "WECHAT_APP_SECRET (WECHAT_JSAPI=true)" in text
    assert all(name in text for name in ("WECHAT_APPID", "WECHAT_MERCHANT_SERIAL", "WECHAT_APIV3_KEY"))
    with pytest.raises(ValidationError) as refused:
        Settings(_env_file=None, environment="production", web_gateway="wechat", wechat_jsapi=True)
    text = str(refused.value)
    assert "WECHAT_APP_SECRET (WECHAT_JSAPI=true)" in text and "CODE_SECRET" in text  # all at once
