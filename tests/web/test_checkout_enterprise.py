"""R18, R19 on the web checkout: once the enterprise's 安全手机 is verified, the enterprise the
purchase is for is known, so what it already has decides what the purchase is — a higher
edition is an upgrade at 版本升级's price (the paid time is never dropped), the same edition a
renewal, a lower one is refused before any payment — and it is delivered at payment."""
from __future__ import annotations

from services.catalog import Cart
from services.orders import OrderKind, OrderStatus
from tests.flows.steps import ENTERPRISE_NAME
from tests.web.conftest import WebWorld
from tests.web.test_checkout_http import pay_in_sandbox

ADMIN = "+8613800138000"


async def verified_as_enterprise(w: WebWorld, edition: str, years: int = 1, *, on: str,
                                 expires_in_days: float = 730):
    """The enterprise's super admin opens a web checkout for `edition` and verifies its 安全手机."""
    h = w.harness
    ent = await h.enterprise_on(ENTERPRISE_NAME, on, expires_in_days=expires_in_days, members={ADMIN: "super_admin"})
    buyer = h.user(phone=ADMIN)
    url = await h.app.checkout.link_for_cart(
        user_id=buyer.id, chat_id=buyer.id, cart=Cart(edition=edition, years=years, pack=None, pack_chosen=True),
        phone=ADMIN, enterprise_name=None)
    await w.get(url)
    assert (await w.post(f"{url}/code", {"buyer": ent.id})).status == 303
    await w.get(url)
    assert (await w.post(f"{url}/verify", {"code": h.sms.last_code(ADMIN)})).status == 303
    return ent, buyer, url


async def test_R18_a_higher_edition_over_one_in_effect_is_an_upgrade_and_keeps_the_paid_time(web_world):
    w = web_world
    h = w.harness
    ent, buyer, url = await verified_as_enterprise(w, "flagship", on="advanced", expires_in_days=730)
    expiry = ent.expires_at

    page = await w.get(url)

    assert "按「版本升级」计价（高级版→旗舰版）" in page.text
    assert "合计 ¥110,000.00" in page.text  # (59,800 − 4,800) × 730 ÷ 365
    assert "待选择" not in page.text  # an upgrade runs to the current expiry: no years to choose
    assert "到期时间不变" in page.text and "支付后将直接发货至「深圳示例科技有限公司」" in page.text
    submitted = await w.post(f"{url}/submit", {})
    assert submitted.status == 303, submitted.text
    order = await h.last_order(buyer)
    assert (order.kind, order.for_enterprise, order.total_fen) == (OrderKind.UPGRADE, True, 11_000_000)

    await pay_in_sandbox(w, submitted.location)

    delivered = await h.enterprises.get(ent.id)
    assert delivered.edition == "flagship" and delivered.expires_at == expiry  # not a year from now
    assert (await h.orders.get(order.id)).status is OrderStatus.BOUND
    assert "支付成功，已发货" in buyer.screen.text and "立即绑定" not in buyer.screen.buttons


async def test_R18_the_same_edition_is_a_renewal_that_adds_the_years(web_world):
    w = web_world
    h = w.harness
    ent, _buyer, url = await verified_as_enterprise(w, "professional", on="professional", expires_in_days=100)

    page = await w.get(url)

    assert "本次购买为「版本续费」" in page.text and "合计 ¥19,800.00" in page.text
    submitted = await w.post(f"{url}/submit", {})
    await pay_in_sandbox(w, submitted.location)
    delivered = await h.enterprises.get(ent.id)
    assert delivered.edition == "professional"
    assert delivered.expires_at.year == ent.expires_at.year + 1 and delivered.expires_at.month == ent.expires_at.month


async def test_R18_a_lower_edition_is_refused_before_any_payment(web_world):
    w = web_world
    h = w.harness
    ent, buyer, url = await verified_as_enterprise(w, "professional", on="flagship")

    page = await w.get(url)

    assert "当前为旗舰版" in page.text and "不支持版本降级" in page.text and "不会产生任何扣款" in page.text
    assert 'action="' + url.removeprefix(w.base) + '/submit"' in page.html  # the form stays, without its button
    assert "提交订单</button>" not in page.html
    refused = await w.post(f"{url}/submit", {})
    assert refused.status == 400 and "不支持版本降级" in refused.text
    assert await h.orders_of(buyer) == []
    assert (await h.enterprises.get(ent.id)).edition == "flagship"
