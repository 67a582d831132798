"""企业认证指引: wherever an unverified buyer is told to verify the enterprise (after paying,
立即绑定 with no verified enterprise, an unverified enterprise's 费用管理, the trial), the bot
shows the way: a short how-to and the vendor's guide, its address a setting."""
from esign_devkit.testing.harness import BotHarness

from config.settings import Settings
from tests.flows.steps import ENTERPRISE_NAME, paid_order

GUIDE = "https://cloud.tencent.com/document/product/1323/58758"  # the vendor's guide links it


def guide_url(buyer) -> str:
    _, button = buyer.telegram.find_button(buyer.id, "查看企业认证指引")
    return button["url"]


async def test_after_paying_the_buyer_is_shown_how_to_verify(esign_harness):
    buyer = esign_harness.user()
    await paid_order(esign_harness, buyer)
    assert "企业认证指引" in buyer.screen.buttons and "单击「企业认证指引」查看认证方法" in buyer.screen.text

    screen = await buyer.tap("企业认证指引")

    assert "🏢 企业认证指引" in screen.text and "提交企业信息，完成企业认证" in screen.text
    assert "添加为企业成员" in screen.text and "立即绑定" in screen.text
    assert guide_url(buyer) == GUIDE


async def test_binding_with_no_verified_enterprise_and_the_order_details_offer_it(esign_harness):
    buyer = esign_harness.user()
    await paid_order(esign_harness, buyer)
    screen = await buyer.tap("立即绑定")
    assert "尚未加入任何已认证企业" in screen.text and "企业认证指引" in screen.buttons
    await buyer.tap("我的订单")
    screen = await buyer.tap(buyer.screen.buttons[0])  # the order's details
    assert "已支付待绑定" in screen.text and "企业认证指引" in screen.buttons


async def test_an_unverified_enterprise_billing_and_trial_offer_it(esign_harness):
    h = esign_harness
    phone = "+8613800138000"
    await h.enterprise(ENTERPRISE_NAME, verified=False, members={phone: "super_admin"})
    admin = h.user(phone=phone)
    await admin.send("/start")
    await admin.tap("费用管理")
    await admin.share_contact()
    await admin.send(h.sms.last_code(phone))
    screen = await admin.tap(f"🏢 {ENTERPRISE_NAME} · 费用管理")
    assert "尚未完成企业认证" in screen.text and "企业认证指引" in screen.buttons
    await admin.send("/start")
    screen = await admin.tap("申请试用")
    assert "请先完成企业认证" in screen.text and "企业认证指引" in screen.buttons


async def test_the_guide_address_is_a_setting(redis, clock):
    settings = Settings(_env_file=None, bot_token=None, code_secret="test-secret",
                        enterprise_verification_guide_url="https://help.example.com/verify")
    h = BotHarness(redis, clock=clock, settings=settings)
    try:
        buyer = h.user()
        await paid_order(h, buyer)
        await buyer.tap("企业认证指引")
        assert guide_url(buyer) == "https://help.example.com/verify"
    finally:
        await h.close()


async def test_english_the_guide(esign_harness):
    buyer = esign_harness.user(lang="en")
    await buyer.send("/start")
    await buyer.tap("Billing")
    await buyer.share_contact()
    screen = await buyer.send(esign_harness.sms.last_code(buyer.phone))
    assert "Enterprise verification guide" in screen.buttons
    screen = await buyer.tap("Enterprise verification guide")
    assert "follow the verification guide" in screen.text
    _, button = buyer.telegram.find_button(buyer.id, "Open the verification guide")
    assert button["url"] == GUIDE
