"""申请试用 (R14, R15, F10): only verified enterprises, only editions above the one in effect,
one trial per enterprise ever (confirmed with a one-chance warning); the form is checked step
by step and can be corrected before submitting; submitting opens the 7-day trial at once and
stores a lead; when it ends the enterprise is back on what it had."""
import re

from tests.flows.catalogue_steps import member_of, open_billing, sign_in, tap_answer

CONTACT = "+8613912345678"  # typed as 13912345678 or in full


async def fill_form(admin, harness, *, edition: str = "专业版", contact: str = CONTACT):
    await admin.tap(re.compile(f"^试用{edition}"))
    admin.expect("仅有一次试用机会")
    await admin.tap(re.compile("^确认申请"))
    await admin.send("张三")
    await admin.send(contact.removeprefix("+86"))
    await admin.send(harness.sms.last_code(contact))
    await admin.tap("金融")
    return await admin.tap("1千–1万份")


async def test_R14_R15_F10_the_application_opens_a_7_day_trial_at_once_and_stores_a_lead(esign_harness):
    h = esign_harness
    admin, ent = await member_of(h, "advanced", days=100)
    await admin.send("/start")
    screen = await admin.tap("申请试用")  # one enterprise: straight to its editions
    assert "可申请高于当前生效版本的版本试用，试用时长 7 天" in screen.text
    assert [b for b in screen.buttons if b.startswith("试用")] == ["试用专业版（7 天）", "试用旗舰版（7 天）"]

    await admin.tap(re.compile("^试用旗舰版"))
    screen = admin.expect("⚠️ 每家企业仅有一次试用机会，提交后不可更改，请确认申请版本")
    assert "试用版本：旗舰版，7 天" in screen.text
    await admin.tap("确认申请旗舰版试用")
    admin.expect("请输入联系人姓名")
    await admin.send("张三")
    admin.expect("请输入联系电话")
    await admin.send("13912345678")
    admin.expect("验证码已发送至")
    await admin.send(h.sms.last_code(CONTACT))
    admin.expect("请选择所在行业")
    await admin.tap("金融")
    await admin.tap("1千–1万份")
    screen = admin.expect("请核对试用申请")
    assert "联系人姓名：张三" in screen.text and "联系电话：+86*******5678" in screen.text
    assert "所在行业：金融" in screen.text and "预估年签署量：1千–1万份" in screen.text

    screen = await admin.tap("提交")

    assert "试用已开通" in screen.text and "至 2026-01-12 10:00" in screen.text and "恢复为高级版" in screen.text
    after = await h.enterprises.get(ent.id)
    assert after.trial_used and after.trial.edition == "flagship" and after.edition == "advanced"
    (lead,) = await h.app.trials.leads()
    assert (lead.enterprise_id, lead.edition, lead.contact_name, lead.contact_phone, lead.industry, lead.volume) == (
        ent.id, "flagship", "张三", CONTACT, "finance", "1k_10k")
    home = await admin.send("/start")
    assert "当前版本：旗舰版（试用中）" in home.text


async def test_R15_bad_answers_are_said_so_and_asked_again_nothing_lost(esign_harness):
    h = esign_harness
    admin, _ = await member_of(h, "experience")
    await admin.send("/start")
    await admin.tap("申请试用")
    await admin.tap(re.compile("^试用高级版"))
    await admin.tap(re.compile("^确认申请"))
    screen = await admin.send("王")
    assert "联系人姓名需为 2–30 个字符" in screen.text and "请输入联系人姓名" in screen.text
    screen = await admin.send_sticker()
    assert "请输入文字" in screen.text
    await admin.send("王小明")
    screen = await admin.send("12345")
    assert "手机号格式不正确" in screen.text and "请输入联系电话" in screen.text
    await admin.send("13912345678")
    code = h.sms.last_code(CONTACT)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    screen = await admin.send(wrong)
    assert "验证码错误，还可尝试 4 次" in screen.text
    await admin.send(code)
    screen = admin.expect("请选择所在行业")
    assert "验证成功" in screen.text
    session = await h.session_of(admin)
    assert (session.trial.contact_name, session.trial.contact_phone) == ("王小明", CONTACT)


async def test_R15_each_answer_can_be_corrected_from_the_review(esign_harness):
    h = esign_harness
    admin, _ = await member_of(h, "experience")
    await admin.send("/start")
    await admin.tap("申请试用")
    await fill_form(admin, h)
    await admin.tap("修改联系人")
    admin.expect("当前：张三")
    screen = await admin.send("李四")
    assert "联系人姓名：李四" in screen.text  # straight back to the review
    await admin.tap("修改行业")
    screen = await admin.tap("教育")
    assert "所在行业：教育" in screen.text
    await admin.tap("修改年签署量")
    screen = await admin.tap("返回核对信息")  # changed their mind: nothing changed
    assert "预估年签署量：1千–1万份" in screen.text
    await admin.tap("修改联系电话")
    await admin.send("13700001111")
    screen = await admin.send(h.sms.last_code("+8613700001111"))
    assert "联系电话：+86*******1111" in screen.text
    await admin.tap("提交")
    (lead,) = await h.app.trials.leads()
    assert (lead.contact_name, lead.contact_phone, lead.industry) == ("李四", "+8613700001111", "education")


async def test_R14_a_second_application_is_refused_one_chance_ever(esign_harness):
    h = esign_harness
    admin, _ = await member_of(h, "experience")
    await admin.send("/start")
    await admin.tap("申请试用")
    await fill_form(admin, h)
    await admin.tap("提交")
    h.advance(days=10)
    await h.run_jobs()

    await admin.send("/start")
    screen = await admin.tap("申请试用")

    assert "已于 2026-01-05 10:00 申请过专业版试用。每家企业仅有一次试用机会，无法再次申请" in screen.text
    assert not any(b.startswith("试用") for b in screen.buttons)
    assert len(await h.app.trials.leads()) == 1


async def test_R14_a_review_submitted_after_the_chance_was_used_elsewhere_is_refused(esign_harness):
    h = esign_harness
    admin, ent = await member_of(h, "experience")
    other = h.user()
    await h.app.enterprises.add_member(ent.id, other.phone, "billing_admin")
    await admin.send("/start")
    await admin.tap("申请试用")
    await fill_form(admin, h)
    # Meanwhile the billing admin applies and submits first.
    await sign_in(other)
    await other.send("/start")
    await other.tap("申请试用")
    await fill_form(other, h, edition="旗舰版", contact="+8613700002222")
    await other.tap("提交")

    answer = await tap_answer(admin, "提交")

    assert answer["text"] == "无法提交试用申请。"
    admin.expect("每家企业仅有一次试用机会，无法再次申请")
    assert len(await h.app.trials.leads()) == 1


async def test_R14_when_the_trial_ends_the_enterprise_returns_to_what_it_had(esign_harness):
    h = esign_harness
    admin, ent = await member_of(h, "advanced", days=100, contracts=500)
    await admin.send("/start")
    await admin.tap("申请试用")
    await fill_form(admin, h, edition="旗舰版")
    await admin.tap("提交")

    h.advance(days=7, seconds=1)
    report = await h.run_jobs()

    assert report.trials_ended == [ent.id]
    admin.expect("试用已结束")
    admin.expect("企业已恢复为高级版")
    admin.expect_buttons("版本续费")
    home = await admin.send("/start")
    assert "当前版本：高级版" in home.text and "试用中" not in home.text and "合同余量：500 份" in home.text
    after = await h.enterprises.get(ent.id)
    assert (after.edition, after.expires_at) == ("advanced", ent.expires_at)


async def test_R14_only_verified_enterprises_and_only_editions_above_the_one_in_effect(esign_harness):
    h = esign_harness
    admin, _ = await member_of(h, "flagship")
    await admin.send("/start")
    screen = await admin.tap("申请试用")
    assert "当前已是最高版本，没有可试用的更高版本" in screen.text

    unverified_admin, _ = await member_of(h, "experience", verified=False, name="杭州未认证贸易有限公司")
    await unverified_admin.send("/start")
    screen = await unverified_admin.tap("申请试用")
    assert "仅已完成企业认证的企业可申请试用" in screen.text and "杭州未认证贸易有限公司" in screen.text


async def test_R14_a_plain_member_is_told_whom_to_ask(esign_harness):
    h = esign_harness
    member, ent = await member_of(h, "advanced", role="member")
    await h.app.enterprises.add_member(ent.id, "+8613800138000", "super_admin")
    await open_billing(member)
    screen = await member.tap("申请试用")
    assert "超级管理员或计费管理员" in screen.text and "+86*******8000" in screen.text
    assert not any(b.startswith("试用") for b in screen.buttons)


async def test_R14_the_half_filled_form_survives_a_restart(esign_harness):
    h = esign_harness
    admin, _ = await member_of(h, "experience")
    await admin.send("/start")
    await admin.tap("申请试用")
    await admin.tap(re.compile("^试用专业版"))
    await admin.tap(re.compile("^确认申请"))
    await admin.send("张三")
    h.restart()
    await admin.send("13912345678")
    await admin.send(h.sms.last_code(CONTACT))
    admin.expect("请选择所在行业")
    assert (await h.session_of(admin)).trial.contact_name == "张三"
