"""Names and free texts are normalised (NFKC) and direction, zero-width and control
characters refused with a clear message before they are stored; what others control (Telegram
names, relayed messages) is shown to staff without them (docs/security.md)."""
from __future__ import annotations

import pytest

from services.text_input import TextRefused, clean_free_text, clean_line, enterprise_name, name_key, neutralise
from tests.flows.steps import to_enterprise_name
from tests.flows.support_steps import card, contact

RLO, ZWSP, LRM, ZWJ, BOM, RLI = "\u202e", "\u200b", "\u200e", "\u200d", "\ufeff", "\u2067"
UNSAFE_CHAT = "含有不可见字符、文字方向控制符或控制字符"


@pytest.mark.parametrize("typed", [
    f"深圳示例{RLO}moc.live科技有限公司", f"深圳{ZWSP}示例科技有限公司", f"{LRM}深圳示例科技有限公司",
    f"深圳示例科技{BOM}有限公司", f"{RLI}深圳示例科技有限公司", f"深圳示例{ZWJ}科技有限公司", "深圳示例\x1b[31m科技有限公司",
    "深圳示例\x00科技有限公司", "深圳示例\U000e0041科技有限公司",  # a tag character
])
def test_direction_zero_width_and_control_characters_are_refused(typed):
    with pytest.raises(TextRefused) as refused:
        enterprise_name(typed)
    assert refused.value.reason in ("invisible", "control")


@pytest.mark.parametrize(("typed", "stored"), [
    ("  深圳示例科技有限公司 ", "深圳示例科技有限公司"),
    ("ＡＢＣ科技（深圳）有限公司", "ABC科技(深圳)有限公司"),  # full width: NFKC
    ("深圳\u3000示例\n科技\t有限公司", "深圳 示例 科技 有限公司"),  # every kind of space
    ("ﬁnance ㈱", "finance (株)"),
])
def test_names_are_stored_in_nfkc_with_spaces_squeezed(typed, stored):
    assert enterprise_name(typed) == stored


@pytest.mark.parametrize(("typed", "reason"), [
    ("", "empty"), ("   ", "empty"), ("深", "too_short"), ("深" * 51, "too_long"), ("!!!", "no_letter"),
    ("/start", "command"),
])
def test_the_other_rules_of_a_name_keep_their_reasons(typed, reason):
    with pytest.raises(TextRefused) as refused:
        enterprise_name(typed)
    assert refused.value.reason == reason


def test_free_text_keeps_lines_and_refuses_the_same_characters():
    assert clean_free_text("第一行  \r\n\r\n\r\n第二行\t 结束") == "第一行\n\n第二行 结束"
    with pytest.raises(TextRefused):
        clean_free_text(f"备注{RLO}txt.exe")
    assert clean_line("/alias", allow_command=True) == "/alias"


def test_what_others_control_is_neutralised_for_display_and_names_compare_alike():
    assert neutralise(f"Eve{RLO}gnp.exe{ZWSP}\x07") == "Evegnp.exe"
    assert neutralise(f"👨{ZWJ}💻 hi\nthere") == f"👨{ZWJ}💻 hi\nthere"  # an emoji sequence and lines kept
    assert name_key("ＡＢＣ科技（深圳） 有限公司") == name_key(f"abc科技(深圳){ZWSP} 有限公司")


async def test_a_buyer_is_told_clearly_and_asked_again(esign_harness):
    buyer = esign_harness.user()
    await to_enterprise_name(buyer)
    screen = await buyer.send(f"深圳示例{RLO}moc.live科技有限公司")
    assert UNSAFE_CHAT in screen.text
    assert await esign_harness.state_of(buyer) == "Buy:enterprise_name"
    screen = await buyer.send(f"深圳{ZWSP}示例科技有限公司")
    assert UNSAFE_CHAT in screen.text
    await buyer.send("ＡＢＣ科技（深圳）有限公司")
    assert (await esign_harness.session_of(buyer)).enterprise_name == "ABC科技(深圳)有限公司"


async def test_english_buyers_are_told_in_english(esign_harness):
    buyer = esign_harness.user("en")
    await buyer.send("/start")
    for label in ("Buy a plan", "Buy now", "Advanced · ¥4,800.00/year", "2 yr · ¥9,600.00",
                  "Contract add-on pack, 1,000 · +¥4,000.00", "Buy now"):
        await buyer.tap(label)
    screen = await buyer.send(f"Acme{ZWSP} Ltd")
    assert "invisible, text-direction or control characters" in screen.text


async def test_a_staff_card_shows_a_telegram_name_without_its_direction_override(esign_harness):
    buyer = esign_harness.user(name=f"Eve{RLO}gnp.exe")
    await contact(buyer)
    agent = esign_harness.agent(name="Li")
    text = card(agent, buyer)
    assert "Evegnp.exe" in text and RLO not in text
    assert all(RLO not in t for t in agent.texts(buyer))


async def test_an_agent_alias_or_note_with_a_direction_override_is_refused(esign_harness):
    from tests.flows.support_steps import claimed

    buyer = esign_harness.user()
    agent = await claimed(esign_harness, buyer)
    screen = await agent.command(f"/alias 客服{RLO}小李")
    assert UNSAFE_CHAT in screen.text
    screen = await agent.command(f"/note 退款{RLO}txt.exe", topic=buyer)
    assert UNSAFE_CHAT in screen.text
    screen = await agent.command("/alias 客服小王", topic=buyer)
    assert "客服小王" in screen.text


async def test_the_web_checkout_refuses_the_same_names_with_a_clear_message(web_world):
    from tests.web.test_checkout_http import verify_typed_phone

    w = web_world
    buyer = w.harness.user()
    url = await w.chat_link(buyer)
    await w.get(url)
    assert (await w.post(f"{url}/choose", {"years": "1", "pack": "none"})).status == 303
    await verify_typed_phone(w, url, buyer.phone)
    await w.get(url)
    refused = await w.post(f"{url}/submit", {"enterprise_name": f"深圳示例{RLO}moc.live科技有限公司"})
    assert refused.status == 400 and "企业名称中含有不可见字符或文字方向控制符" in refused.text
    accepted = await w.post(f"{url}/submit", {"enterprise_name": "ＡＢＣ科技（深圳）有限公司"}, csrf=refused.csrf)
    assert accepted.status == 303, accepted.text
    order = (await w.harness.app.orders.list_for_user(buyer.id))[0]
    assert order.enterprise_name == "ABC科技(深圳)有限公司"
