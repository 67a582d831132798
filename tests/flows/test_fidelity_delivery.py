"""R19: a purchase made for a known verified enterprise by one of its admins is delivered to it
at payment, never left 已支付待绑定: 高级版 through 购买套餐 by its super admin (the phone
verified before, or with a name that is not quite the enterprise's), and 专业版 bought on the web
after verifying the enterprise's 安全手机. Binding stays the path of the unverified buyer."""
import re

from services.enterprises import Role
from services.orders import OrderStatus
from tests.flows.steps import ENTERPRISE_NAME, NO_PACK, years_button
from tests.web.conftest import web_world  # noqa: F401  (the fixture)
from tests.web.test_checkout_http import pay_in_sandbox, verify_typed_phone

ADMIN = "+8613800138000"


async def verified_phone(h, user) -> None:
    """The phone is verified in this chat (费用管理), before any purchase."""
    await user.send("/start")
    await user.tap("费用管理")
    await user.share_contact()
    await user.send(h.sms.last_code(user.phone))


async def test_the_super_admin_buys_advanced_through_the_plan_page_and_it_is_delivered(esign_harness):
    h = esign_harness
    ent = await h.enterprise(ENTERPRISE_NAME, members={ADMIN: "super_admin"})
    admin = h.user(phone=ADMIN)
    await verified_phone(h, admin)
    await admin.send("/start")
    await admin.tap("购买套餐")
    await admin.tap("立即购买")
    await admin.tap(re.compile("^高级版 · "))
    await admin.tap(years_button(1))
    await admin.tap("合同加量包 1千份 · +¥4,000.00")

    screen = await admin.tap("立即购买")  # no name to supply: the enterprise is known

    assert f"购买企业：{ENTERPRISE_NAME}" in screen.text
    assert f"支付后将直接发货至「{ENTERPRISE_NAME}」，无需绑定" in screen.text
    assert "更换购买企业" in screen.buttons
    await admin.tap("提交订单")
    screen = await admin.pay()
    assert "支付成功，已发货" in screen.text and "立即绑定" not in screen.buttons
    order = await h.expect_order(admin, "bound")
    assert order.enterprise_id == ent.id
    delivered = await h.enterprises.get(ent.id)
    assert delivered.edition == "advanced" and delivered.contracts_left == 1600
    assert not any("已支付待绑定" in text for text in admin.bot_messages())


async def test_a_name_typed_differently_still_offers_the_admins_enterprise(esign_harness):
    h = esign_harness
    ent = await h.enterprise(ENTERPRISE_NAME, members={ADMIN: "super_admin"})
    admin = h.user(phone=ADMIN)
    await admin.send("/start")
    await admin.tap("购买套餐")
    await admin.tap("立即购买")
    await admin.tap(re.compile("^高级版 · "))
    await admin.tap(years_button(1))
    await admin.tap(NO_PACK)
    await admin.tap("立即购买")
    await admin.send("深圳示例科技")  # not the registered name
    await admin.share_contact()

    screen = await admin.send(h.sms.last_code(ADMIN))

    assert "本次为哪家企业购买" in screen.text
    screen = await admin.tap(f"为「{ENTERPRISE_NAME}」购买")
    assert "无需绑定" in screen.text
    await admin.tap("提交订单")
    await admin.pay()
    assert (await h.expect_order(admin, "bound")).enterprise_id == ent.id


async def test_a_buyer_whose_enterprise_is_not_verified_still_binds_after_paying(esign_harness):
    h = esign_harness
    await h.enterprise(ENTERPRISE_NAME, verified=False, members={ADMIN: "super_admin"})
    buyer = h.user(phone=ADMIN)
    await buyer.send("/start")
    await buyer.tap("购买套餐")
    await buyer.tap("立即购买")
    await buyer.tap(re.compile("^高级版 · "))
    await buyer.tap(years_button(1))
    await buyer.tap(NO_PACK)
    await buyer.tap("立即购买")
    await buyer.send(ENTERPRISE_NAME)
    await buyer.share_contact()
    await buyer.send(h.sms.last_code(ADMIN))
    await buyer.tap("提交订单")
    screen = await buyer.pay()
    assert "已支付待绑定" in screen.text and "立即绑定" in screen.buttons
    await h.expect_order(buyer, "paid")


async def test_professional_bought_on_the_web_with_the_security_phone_is_delivered(web_world):  # noqa: F811
    w = web_world
    h = w.harness
    ent = await h.enterprise(ENTERPRISE_NAME, members={ADMIN: "super_admin"})  # ADMIN is its 安全手机
    buyer = h.user(phone=ADMIN)
    url = await w.chat_link(buyer)  # 专业版 from 版本选购: the chat verified no phone yet
    await w.get(url)
    assert (await w.post(f"{url}/choose", {"years": "1", "pack": "none"})).status == 303

    await verify_typed_phone(w, url, ADMIN)
    page = await w.get(url)
    assert f"支付后将直接发货至「{ENTERPRISE_NAME}」" in page.text
    submitted = await w.post(f"{url}/submit", {})
    assert submitted.status == 303, submitted.text
    await pay_in_sandbox(w, submitted.location)

    order = await h.expect_order(buyer, "bound")
    assert order.enterprise_id == ent.id and order.status is OrderStatus.BOUND
    assert (await h.enterprises.get(ent.id)).edition == "professional"
    assert "支付成功，已发货" in buyer.screen.text and "立即绑定" not in buyer.screen.buttons


async def test_a_typed_phone_that_is_no_security_phone_stays_personal(web_world):  # noqa: F811
    w = web_world
    h = w.harness
    ent = await h.enterprise(ENTERPRISE_NAME, members={ADMIN: "super_admin"})
    member = "+8613911112222"  # a member, not the 安全手机
    await h.enterprises.add_member(ent.id, member, Role.MEMBER)
    buyer = h.user(phone=member)
    url = await w.chat_link(buyer)
    await w.get(url)
    await w.post(f"{url}/choose", {"years": "1", "pack": "none"})
    await verify_typed_phone(w, url, member)
    page = await w.get(url)
    assert "无需绑定" not in page.text and "直接发货" not in page.text


async def test_english_the_admin_buys_and_it_is_delivered_at_once(esign_harness):
    h = esign_harness
    ent = await h.enterprise("Example Co.", members={ADMIN: "super_admin"})
    admin = h.user(lang="en", phone=ADMIN)
    await admin.send("/start")
    await admin.tap("Billing")
    await admin.share_contact()
    await admin.send(h.sms.last_code(ADMIN))
    await admin.send("/start")
    await admin.tap("Buy a plan")
    await admin.tap("Buy now")
    await admin.tap(re.compile("^Advanced"))
    await admin.tap(re.compile("^1 yr"))
    await admin.tap("No add-on pack")

    screen = await admin.tap("Buy now")

    assert "delivered to Example Co. at once" in screen.text
    await admin.tap("Submit order")
    screen = await admin.pay()
    assert "Paid and delivered" in screen.text and "Bind now" not in screen.buttons
    assert (await h.expect_order(admin, "bound")).enterprise_id == ent.id
