"""The 购买套餐 page as the mini-program's (the vendor's guide): 立即购买 → 版本选购, 版本续费,
版本升级, each value-added service with its 立即购买, and 选购版本 → 版本详情页 → 申请试用; the
product page's own 立即购买 (产品选购页 → 立即购买 → 信息补充页); one 网页端购买, the bot's checkout."""
import re

from tests.flows.steps import ENTERPRISE_NAME, NO_PACK, to_pack, to_review
from tests.test_texts import names_an_internal_id

ADMIN = "+8613800138000"
SERVICE_BUTTONS = ["合同加量包 · 立即购买", "签署报告 · 立即购买", "腾讯会议·在线签约 · 立即购买", "第三方应用集成 · 立即购买"]


def said_nothing_internal(buyer) -> None:
    leaks = [text for text in buyer.bot_messages() if names_an_internal_id(text) or "升级版本" in text]
    assert leaks == []


async def signed_in_admin(h, edition="advanced"):
    """The super admin of a verified enterprise, whose phone this chat verified (费用管理)."""
    ent = await h.enterprise_on(ENTERPRISE_NAME, edition, expires_in_days=200, members={ADMIN: "super_admin"})
    admin = h.user(phone=ADMIN)
    await admin.send("/start")
    await admin.tap("费用管理")
    await admin.share_contact()
    await admin.send(h.sms.last_code(ADMIN))
    return ent, admin


async def test_the_page_carries_renewal_upgrade_services_and_the_edition_details(esign_harness):
    buyer = esign_harness.user()
    await buyer.send("/start")

    screen = await buyer.tap("购买套餐")

    assert screen.buttons[:3] == ["立即购买", "版本续费", "版本升级"]
    assert [b for b in screen.buttons if b.endswith(" · 立即购买")] == SERVICE_BUTTONS
    assert "选购版本" in screen.buttons and "升级版本" not in screen.buttons
    assert "增值服务" in screen.text and "签署报告：用于在诉讼仲裁" in screen.text
    assert "申请试用" in screen.text  # where the trial is: 选购版本 → 版本详情页 → 申请试用

    screen = await buyer.tap("选购版本")  # 版本详情页
    assert "高级版：¥4,800.00/年" in screen.text and "旗舰版" in screen.text
    assert {"高级版 · 立即购买", "专业版 · 网页端购买", "旗舰版 · 网页端购买", "专业版 · 申请试用"} <= set(screen.buttons)
    screen = await buyer.tap("专业版 · 申请试用")  # the trial asks who is applying first
    assert "验证手机号" in screen.text
    said_nothing_internal(buyer)


async def test_renewal_from_the_page_goes_to_the_admins_enterprise(esign_harness):
    _, admin = await signed_in_admin(esign_harness)
    await admin.send("/start")
    await admin.tap("购买套餐")

    screen = await admin.tap("版本续费")

    assert "版本续费" in screen.text and f"企业：{ENTERPRISE_NAME}" in screen.text and "请选择续费时长" in screen.text
    screen = await admin.tap(re.compile("^1年"))
    assert "续费订单确认" in screen.text and "提交订单" in screen.buttons
    said_nothing_internal(admin)


async def test_upgrade_from_the_page_verifies_the_phone_first_then_opens_the_upgrade(esign_harness):
    await esign_harness.enterprise_on(ENTERPRISE_NAME, "advanced", expires_in_days=200, members={ADMIN: "super_admin"})
    admin = esign_harness.user(phone=ADMIN)
    await admin.send("/start")
    await admin.tap("购买套餐")

    screen = await admin.tap("版本升级")
    assert "验证手机号" in screen.text
    await admin.share_contact()
    screen = await admin.send(esign_harness.sms.last_code(ADMIN))

    assert "验证成功" in screen.text and "⬆️ 版本升级" in screen.text and "当前版本：高级版" in screen.text
    assert any(b.startswith("专业版 · ") for b in screen.buttons)
    said_nothing_internal(admin)


async def test_a_service_bought_from_the_page_opens_its_options_or_says_why_not(esign_harness):
    _, admin = await signed_in_admin(esign_harness, "experience")
    await admin.send("/start")
    await admin.tap("购买套餐")

    screen = await admin.tap("签署报告 · 立即购买")
    assert "🧩 签署报告" in screen.text and any(b.startswith("签署报告 ") for b in screen.buttons)

    await admin.send("/start")
    await admin.tap("购买套餐")
    screen = await admin.tap("合同加量包 · 立即购买")  # R7: not under 体验版
    answer = esign_harness.telegram.callback_answers[esign_harness.fed[-1].callback_query.id]
    assert answer["show_alert"] and "购买任一版本后可购买合同加量包" in answer["text"]
    assert "🔒 合同加量包：暂不可购买。原因" in screen.text
    said_nothing_internal(admin)


async def test_a_phone_in_two_enterprises_chooses_which_one(esign_harness):
    h = esign_harness
    await signed_in_admin(h)
    other = await h.enterprise_on("成都示例软件有限公司", "professional", members={ADMIN: "billing_admin"})
    admin = h.user(phone=ADMIN)  # a new chat of the same person, after the resend cool-down
    h.advance(seconds=61)
    await admin.send("/start")
    await admin.tap("购买套餐")
    await admin.tap("版本续费")
    await admin.share_contact()

    screen = await admin.send(h.sms.last_code(ADMIN))

    assert "请选择为哪家企业购买" in screen.text
    assert {ENTERPRISE_NAME, other.name} <= set(screen.buttons)
    screen = await admin.tap(other.name)
    assert f"企业：{other.name}" in screen.text and "当前版本：专业版" in screen.text


async def test_a_phone_in_no_enterprise_is_told_so_with_the_verification_guide(esign_harness):
    buyer = esign_harness.user()
    await buyer.send("/start")
    await buyer.tap("购买套餐")
    await buyer.tap("版本续费")
    await buyer.share_contact()

    screen = await buyer.send(esign_harness.sms.last_code(buyer.phone))

    assert "尚未加入任何企业" in screen.text
    assert {"了解企业版服务", "企业认证指引"} <= set(screen.buttons)


async def test_the_product_page_has_its_own_buy_now_before_the_enterprise_name(esign_harness):
    buyer = esign_harness.user()
    await to_pack(buyer, years=2)

    screen = await buyer.tap("合同加量包 1千份 · +¥4,000.00")  # 产品选购页

    assert "产品选购" in screen.text and "购买时长：2年" in screen.text and "合同加量包：合同加量包 1千份" in screen.text
    assert "合计：¥13,600.00" in screen.text and "合同份数：2,200 份" in screen.text
    assert screen.buttons[:3] == ["立即购买", "修改购买时长", "修改合同加量包"]
    assert await esign_harness.state_of(buyer) == "Buy:review"
    screen = await buyer.tap("修改合同加量包")
    assert "是否加购合同加量包" in screen.text
    await buyer.tap(NO_PACK)
    screen = await buyer.tap("立即购买")  # → 信息补充页
    assert "首次购买请补充企业名称" in screen.text
    assert await esign_harness.state_of(buyer) == "Buy:enterprise_name"


async def test_the_edition_details_web_purchase_is_the_bots_own_checkout(esign_harness):
    buyer = esign_harness.user()
    await buyer.send("/start")
    await buyer.tap("了解企业版服务")

    screen = await buyer.tap("专业版 · 网页端购买")

    assert "专业版无法在聊天中支付" in screen.text
    _, web = buyer.telegram.find_button(buyer.id, "网页端购买")
    url = web.get("url") or web["web_app"]["url"]
    assert url.startswith(esign_harness.app.settings.public_base_url + "/checkout/")
    assert url in screen.text
    every_link = [b.get("url") or (b.get("web_app") or {}).get("url") or ""
                  for m in buyer.telegram.messages(buyer.id, from_bot=True)
                  for row in (m.get("reply_markup") or {}).get("inline_keyboard", []) for b in row]
    assert not any("qian.tencent.com" in link for link in every_link)
    assert not any("qian.tencent.com" in text for text in buyer.bot_messages())


async def test_english_the_page_and_the_product_page(esign_harness):
    buyer = esign_harness.user(lang="en")
    await buyer.send("/start")

    screen = await buyer.tap("Buy a plan")
    assert screen.buttons[:3] == ["Buy now", "Renew edition", "Upgrade edition"]
    assert "Contract add-on pack · Buy now" in screen.buttons and "Choose an edition" in screen.buttons
    screen = await buyer.tap("Choose an edition")
    assert "Flagship · Apply for a trial" in screen.buttons and "Professional · Buy on the web" in screen.buttons
    screen = await buyer.tap("Professional · Buy on the web")
    _, web = buyer.telegram.find_button(buyer.id, "Buy on the web")
    assert (web.get("url") or web["web_app"]["url"]).startswith(esign_harness.app.settings.public_base_url + "/checkout/")

    await buyer.send("/start")
    await buyer.tap("Buy a plan")
    await buyer.tap("Buy now")
    await buyer.tap(re.compile("^Advanced"))
    await buyer.tap(re.compile("^1 yr"))
    screen = await buyer.tap("No add-on pack")
    assert "Your selection" in screen.text and "Total: ¥4,800.00" in screen.text
    screen = await buyer.tap("Buy now")
    assert "enter your enterprise name" in screen.text
    said_nothing_internal(buyer)


async def test_review_step_survives_a_stray_message(esign_harness):
    buyer = esign_harness.user()
    await to_review(buyer)
    screen = await buyer.send("你好")
    assert screen.text.startswith("请使用下方按钮进行选择。") and "产品选购" in screen.text


async def test_the_edition_chosen_on_the_details_page_is_the_one_applied_for(esign_harness):
    """选购版本 → 版本详情页 → choose the edition and 申请试用 (the vendor's guide)."""
    _, admin = await signed_in_admin(esign_harness)  # on 高级版
    await admin.send("/start")
    await admin.tap("购买套餐")
    await admin.tap("选购版本")

    screen = await admin.tap("旗舰版 · 申请试用")

    assert "请确认申请版本" in screen.text and "试用版本：旗舰版" in screen.text
    assert "确认申请旗舰版试用" in screen.buttons
    await admin.send("/start")
    await admin.tap("购买套餐")
    await admin.tap("选购版本")
    screen = await admin.tap("高级版 · 申请试用")  # not above the edition in effect: the ones that are
    answer = esign_harness.fed[-1].callback_query.id
    assert "只能申请高于当前生效版本的版本试用" in screen.text and answer in esign_harness.telegram.callback_answers
    assert "试用专业版（7 天）" in screen.buttons


async def test_english_a_trial_from_the_details_page(esign_harness):
    h = esign_harness
    await h.enterprise_on(ENTERPRISE_NAME, "advanced", expires_in_days=200, members={ADMIN: "super_admin"})
    admin = h.user(lang="en", phone=ADMIN)
    await admin.send("/start")
    await admin.tap("Buy a plan")
    await admin.tap("Choose an edition")
    await admin.tap("Professional · Apply for a trial")
    await admin.share_contact()  # who applies: the phone first, then straight to that edition
    screen = await admin.send(h.sms.last_code(ADMIN))
    assert ENTERPRISE_NAME in screen.buttons[0]
    screen = await admin.tap(screen.buttons[0])
    assert "Please confirm the edition" in screen.text and "Trial: Professional, 7 days" in screen.text
    assert "Confirm the Professional trial" in screen.buttons
