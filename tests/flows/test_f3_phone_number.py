"""F3 phone verification, the number step: bad numbers are explained and asked again, someone
else's contact is refused, and the usual ways of writing a Chinese mobile number all work."""
import pytest

from tests.flows.steps import to_phone


@pytest.mark.parametrize("typed", ["12345", "abc", "1380013800", "+86 138-0013-80000", "😀"])
async def test_F3_bad_number_is_explained_and_the_step_stays(esign_harness, typed):
    buyer = esign_harness.user()
    await to_phone(buyer)

    screen = await buyer.send(typed)

    assert "手机号格式不正确，请重新输入" in screen.text
    assert "验证手机号" in screen.text  # the prompt is shown again
    assert "📱 分享我的手机号" in screen.keyboard
    assert await esign_harness.state_of(buyer) == "Phone:number"
    assert esign_harness.sms.gateway.outbox == []
    # The step still works afterwards, and the cart is intact.
    screen = await buyer.send("13800138000")
    assert "验证码已发送至 +86*******8000" in screen.text
    session = await esign_harness.session_of(buyer)
    assert session.cart.edition == "advanced" and session.cart.pack_chosen


async def test_F3_someone_elses_contact_is_refused(esign_harness):
    buyer = esign_harness.user()
    await to_phone(buyer)

    screen = await buyer.share_contact("+8613700000000", own=False)

    assert "请分享您本人的手机号" in screen.text
    assert await esign_harness.state_of(buyer) == "Phone:number"
    assert esign_harness.sms.gateway.outbox == []
    screen = await buyer.share_contact()
    assert "验证码已发送至" in screen.text
    assert esign_harness.sms.count(buyer.phone) == 1


@pytest.mark.parametrize("typed", ["+86 138-0013-8000", "13800138000", "138 0013 8000", "+8613800138000",
                                   "008613800138000"])
async def test_F3_typed_number_in_common_formats_is_accepted(esign_harness, typed):
    buyer = esign_harness.user()
    await to_phone(buyer)

    screen = await buyer.send(typed)

    assert "验证码已发送至 +86*******8000" in screen.text
    assert esign_harness.sms.count("+8613800138000") == 1
    assert await esign_harness.state_of(buyer) == "Phone:code"
    assert esign_harness.telegram.reply_keyboard(buyer.id) is None  # the share button is gone
    screen = await buyer.send(esign_harness.sms.last_code("+8613800138000"))
    assert "订单确认" in screen.text
    assert (await esign_harness.session_of(buyer)).phone == "+8613800138000"


async def test_F3_own_contact_without_plus_is_accepted(esign_harness):
    """Telegram clients often send the shared number without the leading '+'."""
    buyer = esign_harness.user(phone="+8613800138000")
    await to_phone(buyer)
    screen = await buyer.share_contact("8613800138000")
    assert "验证码已发送至 +86*******8000" in screen.text
    assert esign_harness.sms.count("+8613800138000") == 1


async def test_F3_back_from_the_number_returns_to_the_enterprise_name_with_the_cart(esign_harness):
    buyer = esign_harness.user()
    await to_phone(buyer)
    screen = await buyer.tap("返回")
    assert "企业名称" in screen.text and "当前填写：深圳示例科技有限公司" in screen.text
    assert esign_harness.telegram.reply_keyboard(buyer.id) is None
    assert await esign_harness.state_of(buyer) == "Buy:enterprise_name"
    assert (await esign_harness.session_of(buyer)).cart.edition == "advanced"
