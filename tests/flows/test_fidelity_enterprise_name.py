"""A typo in 企业名称 can be corrected: the confirmation has 修改企业名称; 返回 on the phone step
goes back to 企业名称 (no bubble saying 返回), where the name can be kept or typed anew;
重新选择版本 keeps it (and the confirmation still offers the fix); /start before any order
used it starts over and asks again."""
import re

from tests.flows.steps import ENTERPRISE_NAME, NO_PACK, to_confirmation, to_phone, years_button

TYPO = "深圳示列科技有限公司"


async def test_the_confirmation_fixes_a_typo_and_the_order_carries_the_fix(esign_harness):
    h = esign_harness
    buyer = h.user()
    await to_phone(buyer)  # typed ENTERPRISE_NAME; make it a typo first
    await buyer.tap("返回")
    await buyer.send(TYPO)
    await buyer.share_contact()
    screen = await buyer.send(h.sms.last_code(buyer.phone))
    assert f"企业名称：{TYPO}" in screen.text and "修改企业名称" in screen.buttons

    screen = await buyer.tap("修改企业名称")
    assert "首次购买请补充企业名称" in screen.text and f"当前填写：{TYPO}" in screen.text
    screen = await buyer.tap("返回")  # changed my mind: back to the confirmation, as it was
    assert "订单确认" in screen.text and f"企业名称：{TYPO}" in screen.text
    await buyer.tap("修改企业名称")
    screen = await buyer.send(ENTERPRISE_NAME)

    assert "订单确认" in screen.text and f"企业名称：{ENTERPRISE_NAME}" in screen.text  # the phone is kept
    await buyer.tap("提交订单")
    assert (await h.last_order(buyer)).enterprise_name == ENTERPRISE_NAME


async def test_back_on_the_phone_step_returns_to_the_name_without_a_back_bubble(esign_harness):
    h = esign_harness
    buyer = h.user()
    await to_phone(buyer)
    before = len(buyer.bot_messages())

    screen = await buyer.tap("返回")  # the reply keyboard's 返回

    assert await h.state_of(buyer) == "Buy:enterprise_name"
    assert "企业名称" in screen.text and f"使用「{ENTERPRISE_NAME}」" in screen.buttons
    assert "返回" not in buyer.bot_messages()[before:]
    assert h.telegram.reply_keyboard(buyer.id) is None
    screen = await buyer.tap(f"使用「{ENTERPRISE_NAME}」")  # keep it: on to the phone again
    assert "验证手机号" in screen.text


async def test_choosing_another_edition_keeps_the_name_and_the_fix_stays_offered(esign_harness):
    h = esign_harness
    buyer = h.user()
    await to_confirmation(h, buyer)
    await buyer.tap("重新选择版本")
    await buyer.tap(re.compile("^高级版 · "))
    await buyer.tap(years_button(2))
    await buyer.tap(NO_PACK)
    screen = await buyer.tap("立即购买")
    assert f"企业名称：{ENTERPRISE_NAME}" in screen.text and "修改企业名称" in screen.buttons


async def test_start_forgets_a_name_no_order_used(esign_harness):
    buyer = esign_harness.user()
    await to_phone(buyer)
    await buyer.send("/start")
    await buyer.tap("购买套餐")
    await buyer.tap("立即购买")
    await buyer.tap(re.compile("^高级版 · "))
    await buyer.tap(years_button(1))
    await buyer.tap(NO_PACK)
    screen = await buyer.tap("立即购买")
    assert "首次购买请补充企业名称" in screen.text and "当前填写" not in screen.text


async def test_english_change_the_enterprise_name(esign_harness):
    h = esign_harness
    buyer = h.user(lang="en")
    await buyer.send("/start")
    await buyer.tap("Buy a plan")
    await buyer.tap("Buy now")
    await buyer.tap(re.compile("^Advanced"))
    await buyer.tap(re.compile("^1 yr"))
    await buyer.tap("No add-on pack")
    await buyer.tap("Buy now")
    await buyer.send("Exampel Co.")
    screen = await buyer.tap("Back")
    assert "enter your enterprise name" in screen.text and "Now: Exampel Co." in screen.text
    await buyer.send("Example Co.")
    await buyer.share_contact()
    screen = await buyer.send(h.sms.last_code(buyer.phone))
    assert "Enterprise name: Example Co." in screen.text and "Change the enterprise name" in screen.buttons
