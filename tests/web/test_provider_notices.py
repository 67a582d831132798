"""Notices that must not pay: forged, replayed, re-signed with another key, with a tampered amount,
posted to the production app's notify endpoints for WeChat Pay and Alipay over HTTP. Each is
refused and nothing is written (the whole Redis snapshot is the same before and after); the
genuine notice then pays once, and its re-delivery changes nothing."""
from __future__ import annotations

import base64
import json
from datetime import timedelta
from urllib.parse import parse_qsl, urlencode

from esign_devkit.testing.fake_wechat_pay import new_rsa_key

from services.alipay import beijing_time
from tests.web.test_payment_notices import snapshot
from tests.web.test_provider_checkout import flagship_submitted

MCHID, APP_ID = "1900000109", "2021000122671234"


async def post(w, gateway: str, body: bytes, headers: dict[str, str]) -> tuple[int, str]:
    async with w.client.post(f"/payments/notify/{gateway}", data=body, headers=headers) as resp:
        return resp.status, await resp.text()


async def test_F12_wechat_notices_forged_replayed_resigned_or_tampered_are_refused_with_nothing_written(provider_world, redis):
    w = await provider_world("wechat")
    h, fake = w.harness, w.wechat
    buyer = h.user()
    await flagship_submitted(w, buyer)
    order = await h.expect_order(buyer, "pending_payment")
    fake.notices.send = lambda url, build: None  # the test posts the notices itself
    tx = await fake.pay(MCHID, order.id)
    genuine, genuine_headers = fake.notice_for(tx)
    resource = fake.transaction_resource(tx)

    def forged(content: dict, *, key=None, serial=None, timestamp=None, apiv3_key=None) -> tuple[bytes, dict]:
        body = fake.notice_body("TRANSACTION.SUCCESS", content, original_type="transaction", apiv3_key=apiv3_key)
        return body, fake.signed_headers(body, key=key, serial=serial, timestamp=timestamp)

    cheaper = {**resource, "amount": {**resource["amount"], "total": 1}}
    envelope = json.loads(genuine)
    cipher = bytearray(base64.b64decode(envelope["resource"]["ciphertext"]))
    cipher[5] ^= 1
    flipped = json.dumps({**envelope, "resource": {**envelope["resource"],
                                                    "ciphertext": base64.b64encode(bytes(cipher)).decode()}}).encode()
    old = int(h.clock.now().timestamp()) - 301
    cases = {
        "forged: signed by a key that is not WeChat Pay's": forged(resource, key=new_rsa_key()),
        "re-signed with another key after changing the amount": forged(cheaper, key=new_rsa_key()),
        "amount changed, genuine signature kept": (forged(cheaper)[0], genuine_headers),
        "ciphertext tampered, re-signed": (flipped, fake.signed_headers(flipped)),
        "encrypted under another APIv3 key": forged(resource, apiv3_key=b"k" * 32),
        "replayed: genuine, six minutes old": forged(resource, timestamp=old),
        "unknown key serial": forged(resource, serial="PUB_KEY_ID_0000"),
    }
    before = await snapshot(redis)
    for case, (body, headers) in cases.items():
        status, answer = await post(w, "wechat", body, headers)
        assert status == 400 and json.loads(answer)["code"] == "FAIL", f"{case}: {status} {answer}"
        assert await snapshot(redis) == before, f"{case}: something was written"
    await h.expect_order(buyer, "pending_payment")
    assert not [t for t in buyer.bot_messages() if "支付成功" in t]

    status, answer = await post(w, "wechat", genuine, genuine_headers)
    assert status == 200 and json.loads(answer)["code"] == "SUCCESS"
    await h.expect_order(buyer, "paid")
    paid_state = await snapshot(redis)
    again, again_headers = fake.notice_for(tx)  # WeChat Pay delivers it again, freshly signed
    assert (await post(w, "wechat", again, again_headers))[0] == 200
    assert await snapshot(redis) == paid_state
    assert len([t for t in buyer.bot_messages() if "支付成功" in t]) == 1


async def test_F12_alipay_notices_forged_replayed_resigned_or_tampered_are_refused_with_nothing_written(provider_world, redis):
    w = await provider_world("alipay")
    h, fake = w.harness, w.alipay
    buyer = h.user()
    sent, _ = await flagship_submitted(w, buyer)
    order = await h.expect_order(buyer, "pending_payment")
    async with w.client.session.get(sent.location) as cashier:  # the buyer opens Alipay's page: the trade exists
        assert cashier.status == 200
    fake.notices.send = lambda url, build: None
    trade = await fake.pay(APP_ID, order.id)
    params = fake.notice_params(trade)
    genuine = fake.sign_notice(params)
    form = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}

    def tampered(**change: str) -> bytes:
        fields = dict(parse_qsl(genuine.decode()))
        fields.update(change)
        return urlencode(fields).encode()

    cases = {
        "forged: signed by a key that is not Alipay's": fake.sign_notice(params, key=new_rsa_key()),
        "re-signed with another key after changing the amount": fake.sign_notice({**params, "total_amount": "0.01"},
                                                                                 key=new_rsa_key()),
        "amount changed, genuine signature kept": tampered(total_amount="0.01"),
        "order changed, genuine signature kept": tampered(out_trade_no="o000000000000"),
        "replayed: genuine, 27 hours old": fake.sign_notice(
            {**params, "notify_time": beijing_time(h.clock.now() - timedelta(hours=27))}),
        "another app's": fake.sign_notice({**params, "app_id": "2021000000000000"}),
    }
    before = await snapshot(redis)
    for case, body in cases.items():
        status, answer = await post(w, "alipay", body, form)
        assert status == 400 and answer != "success", f"{case}: {status} {answer}"
        assert await snapshot(redis) == before, f"{case}: something was written"
    await h.expect_order(buyer, "pending_payment")

    assert await post(w, "alipay", genuine, form) == (200, "success")
    await h.expect_order(buyer, "paid")
    paid_state = await snapshot(redis)
    assert await post(w, "alipay", fake.sign_notice(fake.notice_params(trade)), form) == (200, "success")
    assert await snapshot(redis) == paid_state
    assert len([t for t in buyer.bot_messages() if "支付成功" in t]) == 1
