"""A 旗舰版 bought inside WeChat's own browser and paid with WeChat Pay JSAPI, over real HTTP: the
page finds the buyer's openid through WeChat's OAuth (snsapi_base) on the local WeChat, opens the
payment (POST /v3/pay/transactions/jsapi, payer.openid) and hands WeChat's sheet parameters
signed with the merchant key. A forged, replayed or misbound OAuth return is refused and writes
nothing."""
from __future__ import annotations

import json
import re
from html import unescape
from urllib.parse import parse_qsl, urlsplit

import aiohttp

from services import keys
from services.wechat_pay import rsa_verify
from tests.web.conftest import WebWorld
from tests.web.test_provider_checkout import FLAGSHIP_FEN, flagship_submitted, told_paid_once

MCHID, APPID = "1900000109", "wxd678efh567hg6787"
IN_WECHAT = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
             "Mobile/15E148 MicroMessenger/8.0.50(0x1800323b) NetType/WIFI Language/zh_CN")
UA = {"User-Agent": IN_WECHAT}
PARAMS = re.compile(r'data-params="([^"]+)"')


async def wechat_authorises(authorize_url: str) -> str:
    """WeChat's browser on the OAuth page: snsapi_base asks nothing and sends it back."""
    async with aiohttp.ClientSession() as wechat, wechat.get(authorize_url, allow_redirects=False) as resp:
        assert resp.status == 302, await resp.text()
        return resp.headers["Location"]


async def to_oauth(w: WebWorld, buyer) -> tuple[str, str, str]:
    """Submitted inside WeChat: the link, the order id, and WeChat's authorize URL it is sent to."""
    sent, url = await flagship_submitted(w, buyer, user_agent=IN_WECHAT)
    assert sent.location == w.path(f"{url}/wechat/jsapi"), sent.location
    order = await w.harness.expect_order(buyer, "pending_payment")
    assert w.wechat.transaction(MCHID, order.id) is None  # nothing is opened before the openid is known
    leaving = await w.get(sent.location, headers=UA)
    assert leaving.status == 303, leaving.text
    return url, order.id, leaving.location


async def test_F12_flagship_paid_inside_wechat_with_jsapi(provider_world):
    w = await provider_world("wechat", wechat_jsapi=True)
    h, fake = w.harness, w.wechat
    buyer = h.user()

    url, order_id, authorize = await to_oauth(w, buyer)

    parts = urlsplit(authorize)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == f"{fake.base_url}/connect/oauth2/authorize"
    assert parts.fragment == "wechat_redirect"
    query = parse_qsl(parts.query)
    assert [k for k, _ in query] == ["appid", "redirect_uri", "response_type", "scope", "state"]
    asked = dict(query)
    assert asked["appid"] == APPID and asked["response_type"] == "code" and asked["scope"] == "snsapi_base"
    assert asked["redirect_uri"] == f"{url}/wechat/oauth" and re.fullmatch(r"[A-Za-z0-9]{1,128}", asked["state"])

    back = await wechat_authorises(authorize)
    opened = await w.get(back, headers=UA)

    assert opened.status == 303 and opened.location == w.path(f"{url}/wechat/jsapi"), opened.text
    tx = fake.transaction(MCHID, order_id)
    assert tx is not None and tx.trade_type == "JSAPI" and tx.openid == fake.oauth_openid and tx.total == FLAGSHIP_FEN
    assert ("/sns/oauth2/access_token", "openid") in fake.oauth_requests
    page = await w.get(opened.location, headers=UA)
    assert page.status == 200 and "¥59,800.00" in page.text and order_id in page.text
    assert '<script src="/static/wechat_jsapi.js" defer></script>' in page.html
    params = json.loads(unescape(PARAMS.search(page.html).group(1)))
    assert params["appId"] == APPID and params["package"] == f"prepay_id={tx.prepay_id}"
    assert params["signType"] == "RSA" and abs(int(params["timeStamp"]) - h.clock.now().timestamp()) < 5
    signed = f"{params['appId']}\n{params['timeStamp']}\n{params['nonceStr']}\n{params['package']}\n".encode()
    assert rsa_verify(fake.merchants[MCHID].public_key, params["paySign"], signed)  # the merchant key's signature

    await fake.pay_jsapi(params)  # the buyer confirms in WeChat's sheet
    await fake.notices.drain()

    paid = await h.expect_order(buyer, "paid")
    assert paid.charge_id == f"wechat:{tx.transaction_id}"
    await told_paid_once(w, buyer)
    await fake.pay(MCHID, order_id)  # WeChat Pay sends the notice again
    await fake.notices.drain()
    assert (await h.orders.get(order_id)).charge_id == paid.charge_id
    await told_paid_once(w, buyer)
    moved = await w.get(opened.location, headers=UA)  # the page moves on by itself
    assert moved.status == 303 and moved.location == w.path(f"{url}/result")
    assert "支付成功" in (await w.get(moved.location)).text


async def test_F12_a_forged_replayed_or_misbound_oauth_return_is_refused_and_writes_nothing(provider_world):
    w = await provider_world("wechat", wechat_jsapi=True)
    h, fake = w.harness, w.wechat
    buyer = h.user()
    url, order_id, authorize = await to_oauth(w, buyer)
    back = await wechat_authorises(authorize)
    code, state = dict(parse_qsl(urlsplit(back).query))["code"], dict(parse_qsl(urlsplit(back).query))["state"]
    browser = next(c.value for c in w.client.session.cookie_jar if c.key == "esign_csrf")
    oauth = h.app.gateway.oauth
    flipped = state[:-1] + ("0" if state[-1] != "0" else "1")

    async def refused(query: str, session: aiohttp.ClientSession | None = None) -> None:
        if session is None:
            page = await w.get(f"{url}/wechat/oauth?{query}", headers=UA)
            status, text = page.status, page.text
        else:
            async with session.get(f"{url}/wechat/oauth?{query}", headers=UA, allow_redirects=False) as resp:
                status, text = resp.status, await resp.text()
        assert status == 403 and "微信授权已失效" in text, (query, status, text)

    await refused(f"code={code}&state={flipped}")  # forged
    await refused(f"code={code}")  # none
    await refused(f"code={code}&state={oauth.state('o' + '0' * 11, browser)}")  # signed for another order
    async with aiohttp.ClientSession() as other_browser:
        await refused(f"code={code}&state={state}", other_browser)  # the genuine one, in another browser

    assert fake.transaction(MCHID, order_id) is None
    assert await h.app.redis.get(keys.web_payment(order_id)) is None
    assert [path for path, _ in fake.oauth_requests] == ["/connect/oauth2/authorize"]  # no code exchanged

    assert (await w.get(back, headers=UA)).status == 303  # the genuine return, once
    prepay = fake.transaction(MCHID, order_id).prepay_id
    await refused(f"code={code}&state={state}")  # replayed
    assert len(fake.transactions) == 1 and fake.transaction(MCHID, order_id).prepay_id == prepay
    assert [path for path, _ in fake.oauth_requests].count("/sns/oauth2/access_token") == 1


async def test_F12_a_stale_oauth_return_is_refused(provider_world):
    w = await provider_world("wechat", wechat_jsapi=True)
    h = w.harness
    _, order_id, authorize = await to_oauth(w, h.user())
    back = await wechat_authorises(authorize)
    h.advance(minutes=11)
    page = await w.get(back, headers=UA)
    assert page.status == 403 and w.wechat.transaction(MCHID, order_id) is None


async def test_F12_inside_wechat_without_jsapi_the_qr_code_is_shown(provider_world):
    w = await provider_world("wechat")
    sent, url = await flagship_submitted(w, w.harness.user(), user_agent=IN_WECHAT)
    assert sent.location == w.path(f"{url}/wechat")


async def test_F12_a_qr_code_opened_on_a_computer_stays_the_way_to_pay_inside_wechat(provider_world):
    """WeChat Pay takes one scene per out_trade_no, and none once closed: the QR code opened first
    is kept (long-press it inside WeChat), rather than closed for a JSAPI payment it would refuse."""
    w = await provider_world("wechat", wechat_jsapi=True)
    h, fake = w.harness, w.wechat
    buyer = h.user()
    sent, url = await flagship_submitted(w, buyer)  # on a computer: the QR code
    order = await h.expect_order(buyer, "pending_payment")
    assert sent.location == w.path(f"{url}/wechat")

    await w.get(url, headers=UA)  # the same link, opened inside WeChat
    again = await w.post(f"{url}/pay", headers=UA)
    assert again.status == 303 and again.location == w.path(f"{url}/wechat/jsapi")
    kept = await w.get(again.location, headers=UA)

    assert kept.status == 303 and kept.location == w.path(f"{url}/wechat"), kept.text
    tx = fake.transaction(MCHID, order.id)
    assert tx.trade_type == "NATIVE" and tx.trade_state == "NOTPAY"  # still payable
    assert not fake.oauth_requests
    assert (await w.get(kept.location, headers=UA)).status == 200
    await fake.scan(f"weixin://wxpay/bizpayurl?pr={tx.prepay_id[-10:]}")
    await fake.notices.drain()
    await h.expect_order(buyer, "paid")
    await told_paid_once(w, buyer)
