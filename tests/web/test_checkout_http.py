"""F12 web checkout over HTTP, as a buyer goes: the 网页端购买 link from the chat (R2), the
summary, phone verification (R3), 提交订单, the sandbox gateway's cashier page, its signed
asynchronous notice, the result page, and the chat told with 立即绑定 (R12)."""
from __future__ import annotations

import re

from tests.flows.steps import ENTERPRISE_NAME, FLAGSHIP, PROFESSIONAL
from tests.web.conftest import WebWorld

TOKEN_URL = re.compile(r"^http://127\.0\.0\.1:\d+/checkout/[A-Za-z0-9_-]{32}$")


async def verify_typed_phone(w: WebWorld, url: str, phone: str) -> None:
    await w.get(url)
    sent = await w.post(f"{url}/code", {"phone": phone})
    assert sent.status == 303, sent.text
    await w.get(url)
    done = await w.post(f"{url}/verify", {"code": w.harness.sms.last_code(phone)})
    assert done.status == 303, done.text


async def buy_professional_on_the_web(w: WebWorld, buyer) -> tuple[str, str]:
    """From the chat's link to the cashier page; returns (link, cashier URL)."""
    url = await w.chat_link(buyer)
    await w.get(url)
    assert (await w.post(f"{url}/choose", {"years": "1", "pack": "none"})).status == 303
    await verify_typed_phone(w, url, buyer.phone)
    await w.get(url)
    submitted = await w.post(f"{url}/submit", {"enterprise_name": ENTERPRISE_NAME})
    assert submitted.status == 303 and "/sandbox/pay/" in submitted.location, submitted.text
    return url, submitted.location


async def pay_in_sandbox(w: WebWorld, cashier: str) -> str:
    """Press 确认支付 on the cashier page; returns the result URL it sends the buyer back to.
    The notice is asynchronous: wait until the gateway has sent it."""
    await w.get(cashier)
    paid = await w.post(cashier, {"action": "pay"})
    assert paid.status == 303, paid.text
    await w.gateway.drain()
    return paid.location


# --- the link ---------------------------------------------------------------------------------------


async def test_F12_R2_professional_in_chat_links_to_a_checkout_page_with_the_cart(web_world):
    w = web_world
    buyer = w.harness.user()

    url = await w.chat_link(buyer)

    assert TOKEN_URL.match(url)
    assert url in buyer.screen.text  # also text to copy (R4)
    assert "30 分钟内有效" in buyer.screen.text
    page = await w.get(url)
    assert page.status == 200
    assert "专业版" in page.text and "¥19,800.00/年" in page.text
    assert "选择购买时长与合同加量包" in page.text  # the chat had only the edition: the page asks the rest
    assert page.headers["Cache-Control"] == "no-store"


async def test_F12_the_same_cart_offered_again_gives_the_same_link(web_world):
    w = web_world
    buyer = w.harness.user()
    first = await w.chat_link(buyer)

    await buyer.send("随便说点什么")  # the step is shown again
    from tests.web.conftest import web_buy_url

    assert web_buy_url(buyer) == first


async def test_F12_R2_a_complete_cart_over_the_limit_is_not_asked_again(redis, clock):
    """A cart the chat completed (高级版 3 years over a lowered limit) opens at the phone step."""
    from services.catalog import Cart
    from tests.web.conftest import start_world

    w, client = await start_world(redis, clock)
    try:
        buyer = w.harness.user()
        url = await w.harness.app.checkout.link_for_cart(
            user_id=buyer.id, chat_id=buyer.id, cart=Cart(edition="advanced", years=3, pack=None, pack_chosen=True),
            phone=None, enterprise_name=ENTERPRISE_NAME)
        page = await w.get(url)
        assert page.status == 200
        assert "选择购买时长" not in page.text
        assert "高级版 3年 ¥14,400.00" in page.text and "合计 ¥14,400.00" in page.text
        assert "验证手机号" in page.text and 'name="phone"' in page.html
    finally:
        await client.close()
        await w.harness.close()


# --- the whole purchase --------------------------------------------------------------------------------


async def test_F12_whole_web_purchase_pays_the_order_and_tells_the_chat_with_bind_now(web_world):
    w = web_world
    h = w.harness
    buyer = h.user(phone="+8613800138000")  # no enterprise verified yet: bound after payment (R11–R13)

    url, cashier = await buy_professional_on_the_web(w, buyer)

    order = await h.last_order(buyer)  # in the buyer's 我的订单
    assert order.channel.value == "web" and order.status.value == "pending_payment"
    assert order.total_fen == 1_980_000 and order.phone == buyer.phone
    cashier_page = await w.get(cashier)
    assert cashier_page.status == 200 and "¥19,800.00" in cashier_page.text and "确认支付" in cashier_page.text

    result_url = await pay_in_sandbox(w, cashier)

    assert result_url == f"{url}/result"
    result = await w.get(result_url)
    assert result.status == 200 and "支付成功" in result.text and "已支付待绑定" in result.text
    assert f"https://t.me/{h.telegram.username}?start=web_{order.id}" in result.html
    paid = await h.expect_order(buyer, "paid")
    assert paid.charge_id.startswith("sandbox:")
    assert "支付成功" in buyer.screen.text and "立即绑定" in buyer.screen.buttons
    assert buyer.bot_messages().count(buyer.screen.text) == 1
    # The link now opens the result: the order is paid.
    again = await w.get(url)
    assert again.status == 303 and again.location.endswith("/result")

    # The order behaves like one paid in chat: once the enterprise is verified, 立即绑定 binds it (R12).
    await h.enterprise(ENTERPRISE_NAME, members={buyer.phone: "super_admin"})
    await buyer.tap("立即绑定")
    await buyer.tap(ENTERPRISE_NAME)
    await buyer.tap("确认绑定")
    assert "绑定成功" in buyer.screen.text
    bound = await h.expect_order(buyer, "bound")
    enterprise = await h.enterprises.get(bound.enterprise_id)
    assert enterprise.edition == "professional"


async def test_F12_R12_web_paid_order_is_in_my_orders(web_world):
    w = web_world
    buyer = w.harness.user()
    _, cashier = await buy_professional_on_the_web(w, buyer)
    await pay_in_sandbox(w, cashier)

    await buyer.send("/start")
    screen = await buyer.tap("我的订单")
    assert any(b.startswith("专业版 1年") and b.endswith("已支付待绑定") for b in screen.buttons)


async def test_F12_double_submit_makes_one_order(web_world):
    w = web_world
    buyer = w.harness.user()
    url = await w.chat_link(buyer)
    await w.get(url)
    await w.post(f"{url}/choose", {"years": "2", "pack": "pack_1k"})
    await verify_typed_phone(w, url, buyer.phone)
    page = await w.get(url)

    first = await w.post(f"{url}/submit", {"enterprise_name": ENTERPRISE_NAME}, csrf=page.csrf)
    second = await w.post(f"{url}/submit", {"enterprise_name": ENTERPRISE_NAME}, csrf=page.csrf)

    assert first.location == second.location  # the same cashier page
    orders = await w.harness.orders_of(buyer)
    assert len(orders) == 1 and orders[0].total_fen == 2 * 1_980_000 + 400_000


async def test_F12_cancelled_payment_can_be_paid_again(web_world):
    w = web_world
    buyer = w.harness.user()
    url, cashier = await buy_professional_on_the_web(w, buyer)
    await w.get(cashier)

    back = await w.post(cashier, {"action": "cancel"})

    assert back.location.endswith("/result?payment=cancelled")
    page = await w.get(back.location)
    assert page.status == 200 and "支付已取消" in page.text and "重新支付" in page.text
    again = await w.post(f"{url}/pay", {})
    assert again.status == 303 and "/sandbox/pay/" in again.location and again.location != cashier
    await pay_in_sandbox(w, again.location)
    await w.harness.expect_order(buyer, "paid")


async def test_F12_result_page_waits_for_the_notice_and_refreshes_itself(web_world):
    w = web_world
    buyer = w.harness.user()
    url, _ = await buy_professional_on_the_web(w, buyer)

    page = await w.get(f"{url}/result")  # back from the cashier before the notice

    assert page.status == 200 and "正在确认支付结果" in page.text
    assert '<meta http-equiv="refresh" content="3">' in page.html


async def test_F12_the_page_speaks_english_to_an_english_buyer_and_switches_on_request(web_world):
    w = web_world
    buyer = w.harness.user(lang="en")
    from tests.flows.steps import to_editions  # noqa: F401 (English labels below)

    await buyer.send("/start")
    await buyer.tap("Buy a plan")
    await buyer.tap("Buy now")
    await buyer.tap(re.compile("^Flagship"))
    from tests.web.conftest import web_buy_url

    url = web_buy_url(buyer)
    page = await w.get(url)
    assert "Choose the duration and add-on pack" in page.text and "Flagship" in page.text
    assert '<html lang="en">' in page.html

    zh = await w.get(f"{url}?lang=zh")
    assert "选择购买时长与合同加量包" in zh.text and '<html lang="zh-CN">' in zh.html
    after = await w.get(url)  # the choice is remembered
    assert "选择购买时长与合同加量包" in after.text


async def test_R3_enterprise_purchase_sends_the_code_to_the_security_phone(web_world):
    w = web_world
    h = w.harness
    admin, billing = "+8613800138000", "+8613911112222"
    ent = await h.enterprise(ENTERPRISE_NAME, members={admin: "super_admin", billing: "billing_admin"})
    buyer = h.user(phone=billing)
    from services.catalog import Cart

    url = await h.app.checkout.link_for_cart(
        user_id=buyer.id, chat_id=buyer.id, cart=Cart(edition="flagship", years=1, pack=None, pack_chosen=True),
        phone=billing, enterprise_name=None)

    page = await w.get(url)
    assert "深圳示例科技有限公司（安全手机 +86*******8000）" in page.text  # masked (R3)
    assert "个人购买（+86*******2222）" in page.text
    assert admin not in page.html and billing not in page.html
    sent = await w.post(f"{url}/code", {"buyer": ent.id})
    assert sent.status == 303
    page = await w.get(url)
    assert "验证码已发送至 +86*******8000" in page.text
    assert h.sms.count(admin) == 1 and h.sms.count(billing) == 0
    assert (await w.post(f"{url}/verify", {"code": h.sms.last_code(admin)})).status == 303
    page = await w.get(url)
    assert "购买企业 深圳示例科技有限公司" in page.text and 'name="enterprise_name"' not in page.html
    submitted = await w.post(f"{url}/submit", {})
    assert submitted.status == 303
    order = await h.last_order(buyer)
    assert order.enterprise_name == ENTERPRISE_NAME and order.phone == admin and order.edition == "flagship"


async def test_R3_personal_buyer_gets_the_code_on_the_phone_verified_in_chat(web_world):
    w = web_world
    h = w.harness
    buyer = h.user()
    from services.catalog import Cart

    url = await h.app.checkout.link_for_cart(
        user_id=buyer.id, chat_id=buyer.id, cart=Cart(edition="professional", years=1, pack_chosen=True),
        phone=buyer.phone, enterprise_name=ENTERPRISE_NAME)

    page = await w.get(url)
    assert "验证码将发送至您在聊天中验证的手机号 +86*******" in page.text and 'name="phone"' not in page.html
    await w.post(f"{url}/code", {"buyer": "personal"})
    assert h.sms.count(buyer.phone) == 1


async def test_R3_submit_before_verifying_is_refused(web_world):
    w = web_world
    buyer = w.harness.user()
    url = await w.chat_link(buyer)
    await w.get(url)
    await w.post(f"{url}/choose", {"years": "1", "pack": "none"})
    await w.get(url)

    refused = await w.post(f"{url}/submit", {"enterprise_name": ENTERPRISE_NAME})

    assert refused.status == 400 and "请先验证手机号" in refused.text
    assert await w.harness.orders_of(buyer) == []


async def test_R3_wrong_code_says_how_many_tries_are_left_and_a_bad_phone_is_refused(web_world):
    w = web_world
    buyer = w.harness.user()
    url = await w.chat_link(buyer)
    await w.get(url)
    await w.post(f"{url}/choose", {"years": "1", "pack": "none"})
    await w.get(url)

    bad = await w.post(f"{url}/code", {"phone": "12"})
    assert bad.status == 400 and "手机号格式不正确" in bad.text and 'value="12"' in bad.html

    await w.post(f"{url}/code", {"phone": buyer.phone})
    await w.get(url)
    wrong = "000000" if w.harness.sms.last_code(buyer.phone) != "000000" else "111111"
    page = await w.post(f"{url}/verify", {"code": wrong})
    assert page.status == 400 and "验证码错误，还可尝试 4 次" in page.text
    resend = await w.post(f"{url}/code", {"buyer": "personal"})
    assert resend.status == 200 and "秒后再试" in resend.text  # the same cool-down as in chat


async def test_F12_choose_refuses_what_the_catalog_does_not_offer(web_world):
    w = web_world
    buyer = w.harness.user()
    url = await w.chat_link(buyer)
    await w.get(url)

    refused = await w.post(f"{url}/choose", {"years": "7", "pack": "pack_99k"})

    assert refused.status == 400 and "请选择购买时长和合同加量包" in refused.text
    assert "选择购买时长与合同加量包" in refused.text


async def test_F12_link_for_order_reuses_its_token_verifies_then_pays(web_world):
    """An existing order (an agent's, a renewal's) gets a link; the page verifies and pays it."""
    from services.catalog import Cart, quote
    from services.orders import Channel

    w = web_world
    h = w.harness
    buyer = h.user()
    q = quote(h.app.catalog, Cart(edition="flagship", years=1, pack_chosen=True))
    order, _ = await h.orders.create(user_id=buyer.id, chat_id=buyer.id, cart_id="agent-cart", quote=q,
                                     channel=Channel.CONSULTATION, phone=buyer.phone,
                                     enterprise_name=ENTERPRISE_NAME)

    url = await h.app.checkout.link_for_order(order)
    assert await h.app.checkout.link_for_order(order) == url

    page = await w.get(url)
    assert page.status == 200 and order.id in page.text and "¥59,800.00" in page.text
    await w.post(f"{url}/code", {"buyer": "personal"})
    await w.get(url)
    await w.post(f"{url}/verify", {"code": h.sms.last_code(buyer.phone)})
    page = await w.get(url)
    assert "去支付" in page.text and "提交订单" not in page.text.split("订单信息")[-1].split("合计")[0]
    to_cashier = await w.post(f"{url}/pay", {})
    await pay_in_sandbox(w, to_cashier.location)
    paid = await h.orders.get(order.id)
    assert paid.status.value == "paid" and paid.channel is Channel.CONSULTATION
    assert "支付成功" in buyer.screen.text


# --- refusals ------------------------------------------------------------------------------------------


async def test_F12_a_tampered_token_gets_a_clear_404_page(web_world):
    w = web_world
    buyer = w.harness.user()
    url = await w.chat_link(buyer)
    tampered = url[:-1] + ("A" if url[-1] != "A" else "B")

    page = await w.get(tampered)

    assert page.status == 404 and "链接无效" in page.text
    assert "Traceback" not in page.html and "<html" in page.html
    for odd in ("/checkout/..%2F..%2Fetc", "/checkout/%00", "/checkout/" + "x" * 300, "/checkout/abc"):
        page = await w.get(odd)
        assert page.status == 404 and "链接无效" in page.text, odd


async def test_F12_an_expired_token_gets_a_clear_410_page(web_world):
    w = web_world
    buyer = w.harness.user()
    url = await w.chat_link(buyer)
    csrf = (await w.get(url)).csrf
    w.harness.advance(minutes=31)

    page = await w.get(url)
    assert page.status == 410 and "链接已过期" in page.text and "Traceback" not in page.html
    refused = await w.post(f"{url}/choose", {"years": "1", "pack": "none"}, csrf=csrf)
    assert refused.status == 410


async def test_F12_a_paid_order_still_shows_its_result_after_the_link_expired(web_world):
    w = web_world
    buyer = w.harness.user()
    url, cashier = await buy_professional_on_the_web(w, buyer)
    await pay_in_sandbox(w, cashier)
    w.harness.advance(hours=2)

    page = await w.get(f"{url}/result")
    assert page.status == 200 and "支付成功" in page.text
    assert (await w.get(url)).status == 410


async def test_F12_another_users_miniapp_data_on_a_link_is_refused(web_world):
    from esign_devkit.testing.fake_telegram import sign_init_data

    w = web_world
    h = w.harness
    owner, other = h.user(), h.user()
    url = await w.chat_link(owner)
    page = await w.get(url)
    token = h.bot.token
    now = int(h.clock.now().timestamp())

    def init_data(user_id: int, *, auth_date: int = now, bot_token: str = token) -> str:
        from urllib.parse import urlencode

        fields = {"auth_date": str(auth_date), "query_id": "AAE1", "user": f'{{"id":{user_id},"first_name":"A"}}'}
        return urlencode({**fields, "hash": sign_init_data(fields, bot_token)})

    async def check(data: str) -> tuple[int, dict]:
        async with w.client.post(f"{w.path(url)}/miniapp", data={"tg_init_data": data, "csrf": page.csrf},
                                 headers={"Origin": w.base}) as resp:
            return resp.status, await resp.json()

    assert await check(init_data(owner.id)) == (200, {"ok": True})
    status, answer = await check(init_data(other.id))
    assert status == 403 and answer["reason"] == "not_yours" and answer["title"] == "无法打开此链接"
    status, answer = await check(init_data(owner.id, auth_date=now - 2 * 3600))  # too old
    assert status == 403 and answer["reason"] == "miniapp"
    status, answer = await check(init_data(owner.id, bot_token="999:OTHER-BOT"))  # another bot's
    assert status == 403 and answer["reason"] == "miniapp"
    status, answer = await check(init_data(owner.id) + "0")  # tampered
    assert status == 403

    # A form carrying another user's initData is refused too, and changes nothing.
    refused = await w.post(f"{url}/choose", {"years": "1", "pack": "none", "tg_init_data": init_data(other.id)})
    assert refused.status == 403 and "其他 Telegram 账号" in refused.text
    assert "选择购买时长与合同加量包" in (await w.get(url)).text
    # The owner's own initData stands in for the CSRF cookie (Telegram's web client may withhold it).
    accepted = await w.post(f"{url}/choose", {"years": "1", "pack": "none", "tg_init_data": init_data(owner.id)},
                            csrf="")
    assert accepted.status == 303


async def test_F12_forms_without_a_valid_csrf_token_or_from_another_site_are_refused(web_world):
    w = web_world
    h = w.harness
    buyer, other = h.user(), h.user()
    url = await w.chat_link(buyer)
    other_url = await w.chat_link(other)
    other_csrf = (await w.get(other_url)).csrf
    await w.get(url)

    assert (await w.post(f"{url}/choose", {"years": "1", "pack": "none"}, csrf="")).status == 403
    assert (await w.post(f"{url}/choose", {"years": "1", "pack": "none"}, csrf=other_csrf)).status == 403
    assert (await w.post(f"{url}/choose", {"years": "1", "pack": "none"}, csrf="令牌")).status == 403  # not a 500
    foreign = await w.post(f"{url}/choose", {"years": "1", "pack": "none"},
                           headers={"Origin": "https://evil.example"})
    assert foreign.status == 403 and "页面已过期" in foreign.text
    cross = await w.post(f"{url}/choose", {"years": "1", "pack": "none"}, headers={"Sec-Fetch-Site": "cross-site"})
    assert cross.status == 403
    assert "选择购买时长与合同加量包" in (await w.get(url)).text  # nothing changed


async def test_F12_code_and_pay_endpoints_are_rate_limited(web_world):
    w = web_world
    buyer = w.harness.user()
    url = await w.chat_link(buyer)
    await w.get(url)
    await w.post(f"{url}/choose", {"years": "1", "pack": "none"})
    page = await w.get(url)

    answers = [await w.post(f"{url}/code", {"phone": buyer.phone}, csrf=page.csrf) for _ in range(6)]

    assert [a.status for a in answers[:5]] == [303, 200, 200, 200, 200]  # sent, then the cool-down
    assert answers[5].status == 429 and "操作过于频繁" in answers[5].text
    assert int(answers[5].headers["Retry-After"]) > 0
    w.harness.advance(minutes=11)
    assert (await w.post(f"{url}/code", {"phone": buyer.phone}, csrf=page.csrf)).status == 303

    pays = [await w.post(f"{url}/pay", {}, csrf=page.csrf) for _ in range(11)]
    assert pays[-1].status == 429


async def test_F12_security_headers_on_every_answer(web_world):
    w = web_world
    buyer = w.harness.user()
    url = await w.chat_link(buyer)
    first = await w.get(url)
    cookies = first.headers.getall("Set-Cookie", [])
    assert any(c.startswith("esign_csrf=") and "HttpOnly" in c and "SameSite=Lax" in c for c in cookies), cookies
    for page in (first, await w.get("/checkout/unknown-token-xxxxxxxxxxxxxxxx"), await w.get("/nowhere")):
        csp = page.headers["Content-Security-Policy"]
        assert "default-src 'none'" in csp and "script-src 'self'" in csp and "frame-ancestors" in csp
        assert page.headers["X-Content-Type-Options"] == "nosniff"
        assert page.headers["Referrer-Policy"] == "same-origin"
        assert "Strict-Transport-Security" not in page.headers  # http here; https adds it
    assert (await w.get("/nowhere")).status == 404


async def test_F12_healthz(web_world):
    async with web_world.client.get("/healthz") as resp:
        assert resp.status == 200 and await resp.json() == {"status": "ok"}


async def test_F12_logs_never_hold_a_token_a_phone_or_a_code(web_world, caplog):
    import logging

    caplog.set_level(logging.DEBUG)
    w = web_world
    buyer = w.harness.user()
    url, cashier = await buy_professional_on_the_web(w, buyer)
    await pay_in_sandbox(w, cashier)
    await w.get(url + "/result")

    logged = "\n".join(record.getMessage() for record in caplog.records)
    token = url.rsplit("/", 1)[1]
    assert "web.request" in logged and "/checkout/<token>" in logged  # the access log, redacted
    assert token not in logged
    assert buyer.phone not in logged and buyer.phone[3:] not in logged
    assert w.harness.sms.last_code(buyer.phone) not in logged


async def test_F12_flagship_link_from_chat_is_per_user(web_world):
    w = web_world
    a, b = w.harness.user(), w.harness.user()
    assert await w.chat_link(a, FLAGSHIP) != await w.chat_link(b, FLAGSHIP)
    assert await w.chat_link(a, PROFESSIONAL) != await w.chat_link(a, FLAGSHIP)
