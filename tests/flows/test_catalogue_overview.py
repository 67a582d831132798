"""首页 billing overview (F1), who may buy for an enterprise, the personal-edition entrance
(R9) and the information screens (退费说明 R5, 开票说明 R16, 常见问题)."""
import re
from datetime import timedelta

from bot.callbacks import BillingEnt
from services.enterprises import Trial
from tests.flows.catalogue_steps import ENTERPRISE, member_of, open_billing, sign_in, tap_answer

OTHER = "广州另一家科技有限公司"


async def test_F1_home_shows_for_each_enterprise_its_edition_expiry_contracts_services_and_trial(esign_harness):
    h = esign_harness
    user, ent = await member_of(h, "advanced", days=200, contracts=1_234)
    now = h.clock.now()

    def extras(e):
        e.services = {"signing_report": 50, "contract_pack": 1_000}
        e.subscriptions = {"meeting_signing": now + timedelta(days=365)}

    await h.enterprises.update(ent.id, extras)
    other = await h.enterprise_on(OTHER, "experience", members={user.phone: "member"})

    def trial(e):
        e.trial = Trial(edition="flagship", started_at=now, ends_at=now + timedelta(days=7),
                        previous_edition="experience", lead_id="l1")
        e.trial_used = True

    await h.enterprises.update(other.id, trial)

    screen = await user.send("/start")

    mine, theirs = screen.text.split(f"🏢 {ENTERPRISE}")[1], screen.text.split(f"🏢 {OTHER}")[1]
    assert "当前版本：高级版" in mine and "到期时间：2026-07-24" in mine and "合同余量：1,234 份" in mine
    assert "签署报告 50 份" in mine and "合同加量包 已购 1,000 份" in mine and "腾讯会议·在线签约（至 2027-01-05）" in mine
    assert "当前版本：旗舰版（试用中）" in theirs and "试用：旗舰版，至 2026-01-12 10:00；试用结束后恢复为体验版" in theirs
    assert "到期时间：—" in theirs
    user.expect_buttons(f"🏢 {ENTERPRISE} · 费用管理", f"🏢 {OTHER} · 费用管理", "申请试用", "购买套餐",
                        "我的订单", "联系客服", "退费说明", "开票说明", "常见问题")
    assert "了解企业版服务" not in screen.buttons  # the personal entrance is for users without one


async def test_F1_a_member_without_billing_rights_sees_the_overview_and_is_told_whom_to_ask(esign_harness):
    h = esign_harness
    member, ent = await member_of(h, "advanced", role="member")
    await h.app.enterprises.add_member(ent.id, "+8613800138000", "super_admin")
    await h.app.enterprises.add_member(ent.id, "+8613700001111", "billing_admin")

    await open_billing(member)
    member.expect("您的角色：企业成员")
    member.expect(r"请联系：超级管理员 \+86\*{7}8000、计费管理员 \+86\*{7}1111")

    for action in ("版本续费", "版本升级"):
        answer = await tap_answer(member, action)
        assert answer["show_alert"] is True and "+86*******8000" in answer["text"]
        member.expect("💼 费用管理")  # still on the enterprise's billing screen
    await member.tap("增值服务")  # looking is fine
    member.expect("🧩 增值服务")
    answer = await tap_answer(member, re.compile("^签署报告 · "))
    assert answer["show_alert"] is True and "超级管理员" in answer["text"]
    assert (await h.orders_of(member)) == []


async def test_F1_billing_admin_may_buy(esign_harness):
    admin, _ = await member_of(esign_harness, "advanced", role="billing_admin")
    await open_billing(admin)
    admin.expect("您的角色：计费管理员")
    await admin.tap("版本续费")
    admin.expect("请选择续费时长")


async def test_F1_an_unverified_enterprise_is_shown_and_cannot_buy(esign_harness):
    user, _ = await member_of(esign_harness, "experience", verified=False)
    screen = await user.send("/start")
    assert f"🏢 {ENTERPRISE}（未认证" in screen.text
    await open_billing(user)
    user.expect("尚未完成企业认证")
    answer = await tap_answer(user, "版本续费")
    assert "尚未完成企业认证" in answer["text"] and answer["show_alert"] is True


async def test_R9_a_user_with_no_enterprise_sees_about_the_enterprise_editions_where_only_advanced_is_sold_in_chat(esign_harness):
    user = esign_harness.user()
    screen = await user.send("/start")
    assert "了解企业版服务" in screen.buttons

    screen = await user.tap("了解企业版服务")

    assert "高级版：¥4,800.00/年" in screen.text and "专业版：¥19,800.00/年" in screen.text and "旗舰版" in screen.text
    assert "在本聊天中只能支付高级版订单" in screen.text
    assert "高级版 · 立即购买" in screen.buttons
    assert not any(b.startswith(("专业版 · 立即购买", "旗舰版 · 立即购买")) for b in screen.buttons)
    user.expect_buttons("购买咨询", "专业版 · 网页端购买", "旗舰版 · 网页端购买", "旗舰版 · 申请试用")
    screen = await user.tap("高级版 · 立即购买")  # R10: on to 1–3 years, then the add-on pack
    assert "请选择购买时长" in screen.text
    await user.tap(re.compile("^2年"))
    user.expect("是否加购合同加量包")


async def test_R9_a_verified_phone_with_no_enterprise_is_told_so(esign_harness):
    user = esign_harness.user()
    await sign_in(user)
    screen = await user.send("/start")
    assert "了解企业版服务" in screen.buttons
    screen = await user.tap("费用管理")
    assert "尚未加入任何企业" in screen.text and "了解企业版服务" in screen.buttons


async def test_R5_R16_information_screens_are_reachable_from_home_with_their_texts(esign_harness):
    user = esign_harness.user()
    await user.send("/start")
    screen = await user.tap("退费说明")
    assert "目前暂不支持退费及版本降级，请根据实际用量购买" in screen.text
    screen = await user.tap("开票说明")
    assert "订单详情中单击开具发票" in screen.text.replace("「", "").replace("」", "")
    screen = await user.tap("常见问题")
    assert "常见问题" in screen.text and "https://cloud.tencent.com/document/product/1323/71859" in screen.text
    assert "定价与购买常见问题" in screen.buttons
    await user.tap("🏠 首页")
    user.expect("欢迎使用腾讯电子签")


async def test_F1_english_overview(esign_harness):
    user, _ = await member_of(esign_harness, "professional", days=30, lang="en")
    screen = await user.send("/start")
    assert "Edition: Professional" in screen.text and "Contracts left: 500" in screen.text
    user.expect_buttons(f"🏢 {ENTERPRISE} · Billing", "Apply for a trial", "Refund policy", "Invoices", "FAQ")


async def test_F1_F3_billing_asks_whose_phone_first_and_goes_on_to_what_was_asked(esign_harness):
    h = esign_harness
    user = h.user()
    ent = await h.enterprise_on(ENTERPRISE, "advanced", members={user.phone: "super_admin"})
    await user.send("/start")
    # An enterprise's billing button (an old reminder, a forwarded message) in a new conversation:
    await user.tap_stale(user.screen.message_id, BillingEnt(action="view", ent=ent.id).pack())
    user.expect("请先验证手机号")
    screen = await user.share_contact("+8613700009999", own=False)
    assert "请分享您本人的手机号" in screen.text
    screen = await user.send("12")
    assert "手机号格式不正确" in screen.text
    await user.share_contact()
    code = h.sms.last_code(user.phone)
    screen = await user.send(f"{(int(code) + 1) % 1_000_000:06d}")
    assert "验证码错误" in screen.text
    screen = await user.send(code)
    assert "验证成功" in screen.text and "💼 费用管理" in screen.text and "您的角色：超级管理员" in screen.text
    assert (await h.app.enterprises.chats_of(user.phone)) == {user.id: "zh"}  # reminders come here
