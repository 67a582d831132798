"""R2 said once: why 专业版/旗舰版 cannot be paid in chat is one text (common.chat_payment_rule),
true in this channel (a Telegram chat and its one per-order limit, not WeChat Pay nor the
mini-program), and every screen that gives a reason gives that one. No screen, the staff's
included, names a rule or test id (R7, F3, test_…)."""
import re

from tests.flows.steps import PROFESSIONAL, to_editions
from tests.test_texts import names_an_internal_id

ADMIN = "+8613800138000"
RULE_ZH = ("在本聊天中只能支付高级版订单，单笔不超过 ¥50,000.00；专业版、旗舰版请单击「购买咨询」由客服指引购买，"
           "或单击「网页端购买」在网页上下单支付。")
RULE_EN = ("In this chat only Advanced orders can be paid, up to ¥50,000.00 per order; for Professional and Flagship, "
           "tap «Purchase consultation» and an agent will guide you, or tap «Buy on the web» to order and pay on the web.")
OTHER_REASONS = ("微信支付限额", "小程序金额限制", "支付限额（单笔", "WeChat Pay limit", "mini-program's payment limit",
                 "payment limit (")


def every_reason_is_the_one(texts: list[str]) -> None:
    assert [t for t in texts if any(other in t for other in OTHER_REASONS)] == []
    assert [t for t in texts if names_an_internal_id(t)] == []


async def billing_admin(h, lang="zh", edition="advanced"):
    await h.enterprise_on("深圳示例科技有限公司", edition, expires_in_days=200, members={ADMIN: "super_admin"})
    admin = h.user(lang=lang, phone=ADMIN)
    await admin.send("/start")
    await admin.tap("费用管理" if lang == "zh" else "Billing")
    await admin.share_contact()
    await admin.send(h.sms.last_code(ADMIN))
    return admin


async def test_every_screen_that_says_why_says_the_same_reason(esign_harness):
    h = esign_harness
    admin = await billing_admin(h)
    seen = []

    await admin.send("/start")
    seen.append(await admin.tap("购买套餐"))  # the plan page
    await admin.tap("立即购买")
    seen.append(await admin.tap(PROFESSIONAL))  # 版本选购 → 专业版
    await admin.send("/start")
    await admin.tap("常见问题")
    seen.append(admin.screen)  # the FAQ
    await admin.send("/start")
    await admin.tap("购买套餐")
    await admin.tap("版本升级")
    seen.append(await admin.tap(re.compile("^专业版 · ")))  # the upgrade's confirmation
    seen.append(await admin.tap("提交订单"))  # the order, to pay on the web

    for screen in seen:
        assert RULE_ZH in screen.text, screen
    every_reason_is_the_one(admin.bot_messages())


async def test_the_edition_details_and_a_professional_renewal_say_it_too(esign_harness):
    h = esign_harness
    admin = await billing_admin(h, edition="professional")
    await admin.send("/start")
    await admin.tap("购买套餐")
    await admin.tap("选购版本")
    assert RULE_ZH in admin.screen.text
    await admin.send("/start")
    await admin.tap("购买套餐")
    await admin.tap("版本续费")
    screen = await admin.tap(re.compile("^1年"))
    assert "该订单无法在聊天中支付：" + RULE_ZH in screen.text
    every_reason_is_the_one(admin.bot_messages())


async def test_a_locked_service_and_the_staff_card_name_no_rule(esign_harness):
    h = esign_harness
    admin = await billing_admin(h, edition="experience")
    await admin.send("/start")
    await admin.tap("购买套餐")
    screen = await admin.tap("合同加量包 · 立即购买")
    assert "🔒 合同加量包：暂不可购买。原因：" in screen.text and "（R7）" not in screen.text

    buyer = h.user()
    await to_editions(buyer)
    await buyer.tap(PROFESSIONAL)
    await buyer.tap("购买咨询")
    staff = h.agent().texts(buyer)
    assert staff and [t for t in staff if names_an_internal_id(t)] == []
    every_reason_is_the_one(admin.bot_messages() + buyer.bot_messages())


async def test_english_the_same_one_reason(esign_harness):
    h = esign_harness
    buyer = h.user(lang="en")
    await buyer.send("/start")
    screen = await buyer.tap("Buy a plan")
    assert RULE_EN in screen.text
    await buyer.tap("Buy now")
    screen = await buyer.tap(re.compile("^Professional"))
    assert RULE_EN in screen.text
    await buyer.send("/start")
    screen = await buyer.tap("FAQ")
    assert RULE_EN in screen.text
    every_reason_is_the_one(buyer.bot_messages())
