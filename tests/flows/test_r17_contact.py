"""R17: 联系客服 is reachable from every screen — and leaving the phone step by any way takes
its reply keyboard (📱 分享我的手机号) away with it."""
import pytest

from tests.flows import steps

EVERY_STEP = {
    "home": steps.at_home,
    "catalog": steps.at_catalog,
    "editions": steps.at_editions,
    "years": steps.at_years,
    "pack": steps.at_pack,
    "review": steps.at_review,
    "web_only": steps.at_web_only,
    "enterprise_name": steps.at_enterprise_name,
    "phone_number": steps.at_phone_number,
    "phone_code": steps.at_phone_code,
    "confirmation": steps.at_confirmation,
    "payment": steps.at_payment,
    "paid": steps.at_paid,
    "my_orders": steps.at_my_orders,
    "order_details": steps.at_order_details,
    "bind_choose": steps.at_bind_choose,
    "bind_confirm": steps.at_bind_confirm,
    "bound": steps.at_bound,
}


@pytest.mark.parametrize("step", list(EVERY_STEP))
async def test_R17_contact_is_reachable_from_every_step(esign_harness, step):
    buyer = esign_harness.user()
    await EVERY_STEP[step](esign_harness, buyer)
    screen = buyer.latest

    assert screen.has_button("联系客服"), screen
    await buyer.tap("联系客服")
    assert "☎️ 联系客服" in buyer.latest.text
    assert await esign_harness.state_of(buyer) == "Menu:contact"
    assert esign_harness.telegram.reply_keyboard(buyer.id) is None


@pytest.mark.parametrize("leave", ["/start", "inline home", "contact"])
async def test_F3_leaving_the_phone_step_removes_the_share_keyboard(esign_harness, leave):
    buyer = esign_harness.user()
    await steps.to_phone(buyer)
    assert esign_harness.telegram.reply_keyboard(buyer.id) is not None

    if leave == "/start":
        await buyer.send("/start")
    elif leave == "inline home":
        await buyer.tap("🏠 首页")  # on the enterprise-name message above
    else:
        await buyer.tap("联系客服")

    assert esign_harness.telegram.reply_keyboard(buyer.id) is None
    assert await esign_harness.state_of(buyer) in (None, "Menu:contact")
    # And once the keyboard is gone, the phone step comes back with it.
    await buyer.send("/start")
    await buyer.tap("购买套餐")
    await buyer.tap("立即购买")
    await buyer.tap(steps.ADVANCED)
    await buyer.tap(steps.years_button(1))
    await buyer.tap(steps.NO_PACK)
    screen = await buyer.tap("立即购买")
    assert "企业名称" in screen.text  # /start forgot the name no order used yet
    screen = await buyer.send(steps.ENTERPRISE_NAME)
    assert "验证手机号" in screen.text and "📱 分享我的手机号" in screen.keyboard


async def test_F3_the_share_keyboard_is_removed_once_not_twice(esign_harness):
    buyer = esign_harness.user()
    await steps.to_phone(buyer)
    sent = len(esign_harness.telegram.calls_of("sendMessage"))
    await buyer.share_contact()
    removals = [c for c in esign_harness.telegram.calls_of("sendMessage")[sent:]
                if (c.params.get("reply_markup") or {}).get("remove_keyboard")]
    assert len(removals) == 1
    sent = len(esign_harness.telegram.calls_of("sendMessage"))
    await buyer.tap("更换手机号")
    await buyer.tap("返回")
    removals = [c for c in esign_harness.telegram.calls_of("sendMessage")[sent:]
                if (c.params.get("reply_markup") or {}).get("remove_keyboard")]
    assert len(removals) == 1
    assert await esign_harness.state_of(buyer) == "Buy:enterprise_name"
