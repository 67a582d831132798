"""版本升级 upgrade (R4, R5, F8): only higher editions; never a downgrade; the price is the
annual difference for the days left (shown on the confirmation); the edition changes at once
and the expiry stays; an upgrade to 专业版/旗舰版 ends on the web purchase link to copy."""
import re

import pytest

from bot.callbacks import BillingPick
from services.orders import Channel, OrderKind, OrderStatus
from tests.flows.catalogue_steps import member_of, open_billing, tap_answer

EDITION_BUTTON = re.compile(r"^(高级版|专业版|旗舰版) · ")


@pytest.mark.parametrize(("edition", "offered"), [
    ("experience", ["高级版", "专业版", "旗舰版"]),
    ("advanced", ["专业版", "旗舰版"]),
    ("professional", ["旗舰版"]),
    ("flagship", []),
])
async def test_R4_R5_only_higher_editions_are_offered(esign_harness, edition, offered):
    admin, _ = await member_of(esign_harness, edition)
    await open_billing(admin)
    screen = await admin.tap("版本升级")
    assert [EDITION_BUTTON.match(b).group(1) for b in screen.buttons if EDITION_BUTTON.match(b)] == offered
    assert "不支持退费及版本降级" in screen.text
    if not offered:
        assert "当前已是最高版本" in screen.text


async def test_R5_asking_for_a_downgrade_is_answered_no(esign_harness):
    admin, _ = await member_of(esign_harness, "professional")
    await open_billing(admin)
    await admin.tap("版本升级")
    screen = await admin.tap("版本降级？")
    assert "暂不支持版本降级及退费" in screen.text
    # A forged or old button for a lower edition is refused, and nothing is ordered.
    answer = await admin.tap_stale(admin.screen.message_id, BillingPick(what="edition", code="advanced").pack())
    assert answer["show_alert"] is True and "暂不支持版本降级" in answer["text"]
    answer = await admin.tap_stale(admin.screen.message_id, BillingPick(what="edition", code="professional").pack())
    assert "版本续费" in answer["text"]
    assert await esign_harness.orders_of(admin) == []


async def test_R4_the_confirmation_shows_the_calculation(esign_harness):
    admin, _ = await member_of(esign_harness, "advanced", days=200)
    await open_billing(admin)
    await admin.tap("版本升级")
    screen = await admin.tap(re.compile("^专业版"))
    assert "剩余天数：200 天（到期 2026-07-24）" in screen.text
    assert "(¥19,800.00 − ¥4,800.00) × 200 ÷ 365 = ¥15,000.00 × 200 ÷ 365 = ¥8,219.18（向上取整到分）" in screen.text
    assert "(3,000 − 600) × 200 ÷ 365 = 2,400 × 200 ÷ 365 ≈ 1,316 份（向上取整）" in screen.text
    assert "到期时间不变：2026-07-24" in screen.text and "合计：¥8,219.18" in screen.text


@pytest.mark.parametrize(("target", "days", "total", "contracts"), [
    ("专业版", 200, 821_918, 1_316),
    ("旗舰版", 30, 452_055, 773),
])
async def test_R4_in_chat_an_upgrade_to_professional_or_flagship_shows_the_web_link_to_copy(esign_harness, target, days,
                                                                                          total, contracts):
    h = esign_harness
    admin, ent = await member_of(h, "advanced", days=days, contracts=500)
    await open_billing(admin)
    await admin.tap("版本升级")
    await admin.tap(re.compile(f"^{target}"))
    screen = await admin.tap("提交订单")

    order = await h.expect_order(admin, "pending_payment")
    assert (order.kind, order.channel, order.total_fen, order.contracts) == (OrderKind.UPGRADE, Channel.WEB, total, contracts)
    assert "网页端" in screen.text and await h.app.checkout.link_for_order(order) in screen.text
    admin.expect_buttons("网页端购买", "购买咨询")
    assert admin.telegram.invoices(admin.id) == []

    # The web payment delivers it at once: the edition changes, the expiry stays.
    outcome = await h.orders.mark_paid(order.id, charge_id="web:u", amount_fen=total, currency="CNY", provider="web")
    assert outcome.order.status is OrderStatus.BOUND
    after = await h.enterprises.get(ent.id)
    code = {"专业版": "professional", "旗舰版": "flagship"}[target]
    assert (after.edition, after.expires_at, after.contracts_left) == (code, ent.expires_at, 500 + contracts)
    screen = await admin.send("/start")
    assert f"当前版本：{target}" in screen.text


async def test_R4_from_experience_advanced_is_bought_for_the_enterprise_in_chat_and_delivered_at_once(esign_harness):
    h = esign_harness
    admin, ent = await member_of(h, "experience", contracts=0)
    await open_billing(admin)
    await admin.tap("版本升级")
    await admin.tap(re.compile("^高级版"))
    screen = await admin.tap(re.compile("^1年"))
    assert "体验版 → 高级版" in screen.text and "到期时间：2027-01-05" in screen.text
    await admin.tap("提交订单")
    screen = await admin.pay()
    assert "支付成功，已发货" in screen.text and "当前版本：高级版" in screen.text
    after = await h.enterprises.get(ent.id)
    assert (after.edition, after.contracts_left) == ("advanced", 600)
    assert (await h.last_order(admin)).status is OrderStatus.BOUND


async def test_R4_an_upgrade_priced_before_the_edition_changed_is_chosen_again(esign_harness):
    h = esign_harness
    admin, ent = await member_of(h, "advanced")
    await open_billing(admin)
    await admin.tap("版本升级")
    await admin.tap(re.compile("^专业版"))
    await h.enterprises.update(ent.id, lambda e: setattr(e, "edition", "professional"))  # upgraded on the web
    answer = await tap_answer(admin, "提交订单")
    assert "已变化" in answer["text"]
    admin.expect("当前版本：专业版")
    assert await h.orders_of(admin) == []
