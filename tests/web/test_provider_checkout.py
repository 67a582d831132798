"""A 旗舰版 bought on the web and paid through the local WeChat Pay (Native QR on a computer, H5 on a
phone) and the local Alipay, over real HTTP: the production web app with the real provider
adapters, the fakes speaking each provider's protocol (signed API, AES-GCM or RSA2-signed
notices, retries). The chat is told once, the order paid once."""
from __future__ import annotations

from urllib.parse import urlsplit

import aiohttp
import segno
from markupsafe import Markup

from tests.flows.steps import ENTERPRISE_NAME, FLAGSHIP
from tests.web.conftest import WebWorld
from tests.web.test_checkout_http import verify_typed_phone

IPHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148 Safari/604.1"
DESKTOP = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/126.0 Safari/537.36"
FLAGSHIP_FEN = 5_980_000


async def flagship_submitted(w: WebWorld, buyer, *, user_agent: str = DESKTOP, gateway: str | None = None):
    """From the chat's 网页端购买 link to 提交订单 (and, with several gateways, the chosen one):
    the answer that sends the buyer on, and the link."""
    url = await w.chat_link(buyer, FLAGSHIP)
    await w.get(url)
    assert (await w.post(f"{url}/choose", {"years": "1", "pack": "none"})).status == 303
    await verify_typed_phone(w, url, buyer.phone)
    await w.get(url)
    sent = await w.post(f"{url}/submit", {"enterprise_name": ENTERPRISE_NAME}, headers={"User-Agent": user_agent})
    if gateway is not None:
        assert sent.status == 303 and sent.location == w.path(url), sent.text
        page = await w.get(url)
        assert page.status == 200 and "微信支付" in page.text and "支付宝" in page.text, page.text
        sent = await w.post(f"{url}/pay", {"gateway": gateway}, headers={"User-Agent": user_agent})
    assert sent.status == 303, sent.text
    return sent, url


async def told_paid_once(w: WebWorld, buyer) -> None:
    paid = [t for t in buyer.bot_messages() if "支付成功" in t]
    assert len(paid) == 1, buyer.bot_messages()
    assert "立即绑定" in buyer.screen.buttons


async def test_F12_flagship_paid_by_scanning_the_wechat_native_qr_code(provider_world):
    w = await provider_world("wechat")
    h, fake = w.harness, w.wechat
    buyer = h.user()

    sent, url = await flagship_submitted(w, buyer)

    assert sent.location == w.path(f"{url}/wechat")  # a computer: our page with WeChat Pay's QR code
    order = await h.expect_order(buyer, "pending_payment")
    tx = fake.transaction("1900000109", order.id)
    assert tx is not None and tx.trade_type == "NATIVE" and tx.total == FLAGSHIP_FEN
    assert tx.time_expire == order.expires_at and tx.notify_url == f"{w.base}/payments/notify/wechat"
    page = await w.get(sent.location)
    assert page.status == 200 and "¥59,800.00" in page.text and order.id in page.text
    code_url = next(iter(fake.transactions.values())).prepay_id[-10:]
    shown = page.html.split('<div class="qr"', 1)[1]
    expected = str(Markup(segno.make(f"weixin://wxpay/bizpayurl?pr={code_url}", error="m").svg_inline(
        scale=5, title="微信支付二维码")))
    assert expected in shown, "the QR code on the page is not the code_url's"
    assert '<meta http-equiv="refresh" content="3">' in page.html  # follows the payment without JavaScript
    assert "<script>" not in page.html

    await fake.scan(f"weixin://wxpay/bizpayurl?pr={code_url}")
    await fake.notices.drain()

    paid = await h.expect_order(buyer, "paid")
    assert paid.charge_id == f"wechat:{tx.transaction_id}"
    await told_paid_once(w, buyer)
    assert [d.status for d in fake.notices.deliveries] == [200]
    after = await w.get(sent.location)  # the page moves on by itself
    assert after.status == 303 and after.location == w.path(f"{url}/result")
    assert "支付成功" in (await w.get(after.location)).text


async def test_F12_flagship_paid_on_a_phone_through_wechat_h5_and_back_to_the_result(provider_world):
    w = await provider_world("wechat")
    h, fake = w.harness, w.wechat
    buyer = h.user()

    sent, url = await flagship_submitted(w, buyer, user_agent=IPHONE)

    order = await h.expect_order(buyer, "pending_payment")
    tx = fake.transaction("1900000109", order.id)
    assert tx is not None and tx.trade_type == "MWEB" and tx.client_ip == "127.0.0.1"
    assert sent.location.startswith(f"{fake.base_url}/cgi-bin/mmpayweb-bin/checkmweb?prepay_id={tx.prepay_id}")
    async with aiohttp.ClientSession() as phone:  # the phone's browser on WeChat's page
        async with phone.get(sent.location) as cashier:
            assert cashier.status == 200 and "确认支付" in await cashier.text()
        back = f"{url}/result"
        async with phone.post(f"{fake.base_url}/fake/pay/1900000109/{order.id}", data={"redirect_url": back},
                              allow_redirects=False) as done:
            assert done.status == 303 and done.headers["Location"] == back
    await fake.notices.drain()

    await h.expect_order(buyer, "paid")
    await told_paid_once(w, buyer)
    assert "支付成功" in (await w.get(f"{url}/result")).text


async def test_F12_flagship_paid_through_alipay_computer_cashier(provider_world):
    w = await provider_world("alipay")
    h, fake = w.harness, w.alipay
    buyer = h.user()

    sent, url = await flagship_submitted(w, buyer)

    assert sent.location.startswith(fake.gateway_url + "?")  # off to Alipay's signed page-pay URL
    assert "method=alipay.trade.page.pay" in sent.location
    order = await h.expect_order(buyer, "pending_payment")
    async with aiohttp.ClientSession() as browser:
        async with browser.get(sent.location) as cashier:
            assert cashier.status == 200 and "确认付款" in await cashier.text() and "59800.00" in await cashier.text()
        async with browser.post(f"{fake.base_url}/fake/pay/2021000122671234/{order.id}", allow_redirects=False) as done:
            assert done.status == 303 and done.headers["Location"].startswith(f"{url}/result?")
    await fake.notices.drain()

    paid = await h.expect_order(buyer, "paid")
    trade = fake.trade("2021000122671234", order.id)
    assert paid.charge_id == f"alipay:{trade.trade_no}"
    await told_paid_once(w, buyer)
    assert [d.answer for d in fake.notices.deliveries] == ["success"]


async def test_F12_alipay_on_a_phone_is_the_wap_cashier(provider_world):
    w = await provider_world("alipay")
    sent, _ = await flagship_submitted(w, w.harness.user(), user_agent=IPHONE)
    assert "method=alipay.trade.wap.pay" in sent.location and "QUICK_WAP_WAY" in urlsplit(sent.location).query


async def test_F12_the_buyer_chooses_wechat_then_alipay_and_the_qr_code_is_closed_first(provider_world):
    w = await provider_world("wechat,alipay")
    h = w.harness
    buyer = h.user()

    sent, url = await flagship_submitted(w, buyer, gateway="wechat")
    assert sent.location == w.path(f"{url}/wechat")
    order = await h.expect_order(buyer, "pending_payment")
    assert w.wechat.transaction("1900000109", order.id).trade_state == "NOTPAY"

    await w.get(url)
    switched = await w.post(f"{url}/pay", {"gateway": "alipay"})

    assert switched.status == 303 and switched.location.startswith(w.alipay.gateway_url)
    assert w.wechat.transaction("1900000109", order.id).trade_state == "CLOSED"  # nobody can pay it twice
    with_scan = w.wechat.transaction("1900000109", order.id)
    try:
        await w.wechat.pay("1900000109", order.id)
        raise AssertionError(f"a closed WeChat Pay order was paid: {with_scan}")
    except ValueError:
        pass
    async with aiohttp.ClientSession() as browser, browser.get(switched.location) as cashier:
        assert cashier.status == 200
    await w.alipay.pay("2021000122671234", order.id)
    await w.alipay.notices.drain()
    paid = await h.expect_order(buyer, "paid")
    assert paid.charge_id.startswith("alipay:")
    await told_paid_once(w, buyer)


async def test_F12_a_lost_wechat_notice_is_made_up_by_asking_wechat_pay_from_the_waiting_page(provider_world):
    w = await provider_world("wechat")
    h, fake = w.harness, w.wechat
    buyer = h.user()
    sent, url = await flagship_submitted(w, buyer)
    order = await h.expect_order(buyer, "pending_payment")
    fake.notices.send = lambda url, build: None  # the notice never arrives
    await fake.pay("1900000109", order.id)

    waiting = await w.get(sent.location)
    assert waiting.status == 200  # too soon to ask: the page waits
    await h.expect_order(buyer, "pending_payment")
    h.advance(seconds=11)
    moved = await w.get(sent.location)

    assert moved.status == 303 and moved.location == w.path(f"{url}/result")
    await h.expect_order(buyer, "paid")
    await told_paid_once(w, buyer)
    assert ("GET", f"/v3/pay/transactions/out-trade-no/{order.id}", 200) in fake.requests


async def test_F12_an_order_that_expires_unpaid_is_closed_at_wechat_pay(provider_world):
    w = await provider_world("wechat")
    h, fake = w.harness, w.wechat
    buyer = h.user()
    await flagship_submitted(w, buyer)
    order = await h.expect_order(buyer, "pending_payment")

    h.advance(minutes=31)
    await h.run_jobs()

    assert (await h.orders.get(order.id)).status.value == "expired"
    assert fake.transaction("1900000109", order.id).trade_state == "CLOSED"
    assert ("POST", f"/v3/pay/transactions/out-trade-no/{order.id}/close", 204) in fake.requests
