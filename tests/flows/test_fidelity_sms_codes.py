"""The SMS-code step never contradicts itself: a resend inside the cool-down with a live code
says "type it", without a code says "none sent yet" (never "sent to …"); a user who never got
a code is told so, not that it expired; after 5 wrong codes it asks for a new code, never to
type one."""
from tests.flows.steps import ENTERPRISE_NAME, to_code, to_phone

PROMPT = "请输入 6 位验证码"


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


def one_voice(text: str) -> None:
    """No message says both that sending is refused and that a code was sent."""
    assert not ("过于频繁" in text and "已发送至" in text), text
    assert not ("Too many requests" in text and "A code was sent" in text), text


async def test_a_resend_inside_the_cool_down_with_a_live_code_says_type_it(esign_harness):
    buyer = esign_harness.user()
    await to_code(buyer)
    screen = await buyer.tap("重新发送验证码")
    one_voice(screen.text)
    assert "刚才发送的验证码仍然有效" in screen.text and PROMPT in screen.text


async def test_a_user_who_never_got_a_code_is_told_so_not_that_it_expired(esign_harness):
    h = esign_harness
    first = h.user()
    await to_code(first)  # a code to this phone a moment ago, for another chat
    second = h.user(phone=first.phone)
    await to_phone(second)
    screen = await second.share_contact()
    one_voice(screen.text)
    assert "秒后再试" in screen.text and "验证码尚未发送" in screen.text and "已发送至" not in screen.text

    screen = await second.send(h.sms.last_code(first.phone))  # the other chat's code: not theirs
    assert "您目前没有可用的验证码（尚未发送" in screen.text
    assert "已过期" not in screen.text and "已失效" not in screen.text and PROMPT not in screen.text


async def test_after_five_wrong_codes_no_prompt_to_type_one(esign_harness):
    h = esign_harness
    buyer = h.user()
    await to_code(buyer)
    right = h.sms.last_code(buyer.phone)
    for _ in range(5):
        screen = await buyer.send(wrong(right))
    assert "验证码错误次数过多" in screen.text and PROMPT not in screen.text
    assert "请单击「重新发送验证码」获取新的验证码" in screen.text
    screen = await buyer.send("12")  # not even a code: still no prompt, no "6 位数字"
    assert PROMPT not in screen.text and "请输入 6 位数字验证码" not in screen.text

    h.advance(seconds=61)
    screen = await buyer.tap("重新发送验证码")
    assert PROMPT in screen.text  # a new code: now it asks for it
    screen = await buyer.send(h.sms.last_code(buyer.phone))
    assert "订单确认" in screen.text and f"企业名称：{ENTERPRISE_NAME}" in screen.text


async def test_an_expired_code_says_expired_and_asks_for_a_new_one(esign_harness):
    h = esign_harness
    buyer = h.user()
    await to_code(buyer)
    h.advance(minutes=6)
    screen = await buyer.send(h.sms.last_code(buyer.phone))
    assert "验证码已过期" in screen.text and PROMPT not in screen.text


async def test_english_the_code_step_in_one_voice(esign_harness):
    h = esign_harness
    buyer = h.user(lang="en")
    await buyer.send("/start")
    await buyer.tap("Buy a plan")
    await buyer.tap("Buy now")
    await buyer.tap(buyer.screen.buttons[0])  # Advanced
    await buyer.tap(buyer.screen.buttons[0])  # 1 yr
    await buyer.tap("No add-on pack")
    await buyer.tap("Buy now")
    await buyer.send("Example Co.")
    await buyer.share_contact()
    screen = await buyer.tap("Resend code")
    one_voice(screen.text)
    assert "still valid" in screen.text
    right = h.sms.last_code(buyer.phone)
    for _ in range(5):
        screen = await buyer.send(wrong(right))
    assert "Too many wrong codes" in screen.text and "Type the 6-digit code" not in screen.text
