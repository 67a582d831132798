"""F3 phone verification, the code step: wrong codes, the attempt limit, the resend cool-down,
expiry, malformed input and changing the number. The cart survives all of it."""
from tests.flows.steps import to_code


def wrong_code(right: str) -> str:
    return f"{(int(right) + 1) % 1_000_000:06d}"


async def test_F3_wrong_code_says_how_many_tries_are_left(esign_harness):
    buyer = esign_harness.user()
    await to_code(buyer)
    right = esign_harness.sms.last_code(buyer.phone)

    screen = await buyer.send(wrong_code(right))

    assert "验证码错误，还可尝试 4 次。" in screen.text
    assert "重新发送验证码" in screen.buttons and "更换手机号" in screen.buttons
    assert await esign_harness.state_of(buyer) == "Phone:code"
    screen = await buyer.send(right)
    assert "手机号 +86*******" in screen.text and "验证成功" in screen.text
    assert "订单确认" in screen.text


async def test_F3_five_wrong_codes_lock_the_code_until_a_new_one_is_sent(esign_harness):
    buyer = esign_harness.user()
    await to_code(buyer)
    right = esign_harness.sms.last_code(buyer.phone)

    for left in (4, 3, 2, 1):
        screen = await buyer.send(wrong_code(right))
        assert f"还可尝试 {left} 次" in screen.text
    screen = await buyer.send(wrong_code(right))
    assert "验证码错误次数过多" in screen.text
    assert "请输入 6 位验证码" not in screen.text and "请单击「重新发送验证码」获取新的验证码" in screen.text

    screen = await buyer.send(right)  # even the right code is refused now
    assert "验证码错误次数过多" in screen.text and "请输入 6 位验证码" not in screen.text
    assert "订单确认" not in screen.text
    assert await esign_harness.state_of(buyer) == "Phone:code"
    assert (await esign_harness.session_of(buyer)).phone is None

    # A resend inside the cool-down is refused with the wait...
    esign_harness.clock.advance(seconds=10)
    screen = await buyer.tap("重新发送验证码")
    assert "请 50 秒后再试" in screen.text
    assert "验证码已发送至" not in screen.text and "验证码尚未发送" in screen.text  # no code to type yet
    assert esign_harness.sms.count(buyer.phone) == 1

    # ...and after it a new code is sent, which works.
    esign_harness.clock.advance(seconds=51)
    screen = await buyer.tap("重新发送验证码")
    assert "验证码已发送至" in screen.text
    assert esign_harness.sms.count(buyer.phone) == 2
    new = esign_harness.sms.last_code(buyer.phone)
    if new == right:  # one chance in a million; the old code must not work, the new one must
        return
    screen = await buyer.send(right)
    assert "验证码错误" in screen.text
    screen = await buyer.send(new)
    assert "订单确认" in screen.text
    assert await esign_harness.state_of(buyer) == "Buy:confirm"
    session = await esign_harness.session_of(buyer)
    assert session.phone == buyer.phone
    assert session.cart.edition == "advanced" and session.cart.years == 1  # the cart survived


async def test_F3_resend_within_the_cool_down_says_to_wait(esign_harness):
    buyer = esign_harness.user()
    await to_code(buyer)

    screen = await buyer.tap("重新发送验证码")

    assert "刚才发送的验证码仍然有效，请直接输入；60 秒后才能重新发送。" in screen.text
    assert "过于频繁" not in screen.text  # the code it has still works: nothing to contradict
    assert esign_harness.sms.count(buyer.phone) == 1
    assert await esign_harness.state_of(buyer) == "Phone:code"
    first = esign_harness.sms.last_code(buyer.phone)
    screen = await buyer.send(first)  # the first code still works
    assert "订单确认" in screen.text


async def test_F3_resend_after_the_cool_down_sends_a_new_code(esign_harness):
    buyer = esign_harness.user()
    await to_code(buyer)
    esign_harness.clock.advance(seconds=61)

    screen = await buyer.tap("重新发送验证码")

    assert esign_harness.sms.count(buyer.phone) == 2
    assert "验证码已发送至 +86*******" in screen.text
    screen = await buyer.send(esign_harness.sms.last_code(buyer.phone))
    assert "订单确认" in screen.text


async def test_F3_code_expires_after_five_minutes(esign_harness):
    buyer = esign_harness.user()
    await to_code(buyer)
    code = esign_harness.sms.last_code(buyer.phone)
    esign_harness.clock.advance(minutes=5, seconds=1)

    screen = await buyer.send(code)

    assert "验证码已过期" in screen.text
    assert await esign_harness.state_of(buyer) == "Phone:code"
    await buyer.tap("重新发送验证码")
    assert esign_harness.sms.count(buyer.phone) == 2
    screen = await buyer.send(esign_harness.sms.last_code(buyer.phone))
    assert "订单确认" in screen.text


async def test_F3_code_just_inside_five_minutes_still_works(esign_harness):
    buyer = esign_harness.user()
    await to_code(buyer)
    esign_harness.clock.advance(minutes=4, seconds=59)
    screen = await buyer.send(esign_harness.sms.last_code(buyer.phone))
    assert "订单确认" in screen.text


async def test_F3_malformed_code_is_explained_and_takes_no_try(esign_harness):
    buyer = esign_harness.user()
    await to_code(buyer)
    right = esign_harness.sms.last_code(buyer.phone)

    for text in ("12ab56", "123", "1234567", "验证码"):
        screen = await buyer.send(text)
        assert "请输入 6 位数字验证码。" in screen.text
        assert await esign_harness.state_of(buyer) == "Phone:code"
    screen = await buyer.send(wrong_code(right))
    assert "还可尝试 4 次" in screen.text  # the malformed ones did not count
    screen = await buyer.send(f" {right[:3]} {right[3:]} ")  # spaces are forgiven
    assert "订单确认" in screen.text


async def test_F3_change_number_goes_back_to_the_number_and_sends_to_the_new_one(esign_harness):
    buyer = esign_harness.user()
    await to_code(buyer)
    old_code = esign_harness.sms.last_code(buyer.phone)

    screen = await buyer.tap("更换手机号")
    assert "验证手机号" in screen.text
    assert "📱 分享我的手机号" in screen.keyboard
    assert await esign_harness.state_of(buyer) == "Phone:number"

    screen = await buyer.send("13912345678")
    assert "验证码已发送至 +86*******5678" in screen.text
    assert esign_harness.sms.count("13912345678") == 1
    new_code = esign_harness.sms.last_code("13912345678")
    if old_code != new_code:
        screen = await buyer.send(old_code)  # the old number's code is not this number's
        assert "验证码错误" in screen.text
    screen = await buyer.send(new_code)
    assert "订单确认" in screen.text
    assert "手机号：+86*******5678" in screen.text
    assert (await esign_harness.session_of(buyer)).phone == "+8613912345678"
