"""增值服务 value-added services (R6–R8, F9): all four listed from every edition, the unavailable
ones with the rule, the reason and how to unlock them; each bought and delivered to the account."""
import re
from datetime import UTC, datetime, timedelta

import pytest

from bot.callbacks import BillingPick
from services.enterprises import Trial
from tests.flows.catalogue_steps import member_of, open_billing, tap_answer

UTC = UTC
SERVICES = ["合同加量包", "签署报告", "腾讯会议·在线签约", "第三方应用集成"]


@pytest.mark.parametrize(("edition", "buyable"), [
    ("experience", ["签署报告", "腾讯会议·在线签约"]),  # R6
    ("advanced", ["合同加量包", "签署报告", "腾讯会议·在线签约"]),  # R7, R8
    ("professional", SERVICES),
    ("flagship", SERVICES),
])
async def test_R6_R7_R8_every_service_is_listed_and_only_the_allowed_ones_can_be_bought(esign_harness, edition, buyable):
    admin, _ = await member_of(esign_harness, edition)
    await open_billing(admin)
    screen = await admin.tap("增值服务")
    for name in SERVICES:
        if name in buyable:
            assert f"✅ {name}：" in screen.text and f"{name} · 立即购买" in screen.buttons
        else:
            assert f"🔒 {name}：暂不可购买" in screen.text and f"🔒 {name}（暂不可购买）" in screen.buttons


async def test_R6_R7_R8_under_experience_the_locked_services_say_why_and_how_to_unlock(esign_harness):
    admin, _ = await member_of(esign_harness, "experience")
    await open_billing(admin)
    screen = await admin.tap("增值服务")
    assert ("🔒 合同加量包：暂不可购买。原因：体验版下只可以购买签署报告、腾讯会议·在线签约服务，"
            "购买任一版本后可购买合同加量包") in screen.text
    assert "解锁方式：购买任一版本（单击「版本升级」）" in screen.text
    assert "🔒 第三方应用集成：暂不可购买。原因：第三方应用集成仅支持专业版、旗舰版购买" in screen.text
    answer = await tap_answer(admin, "🔒 合同加量包（暂不可购买）")
    assert answer["show_alert"] is True and "购买任一版本" in answer["text"]
    # A forged pick of a locked service goes nowhere either.
    answer = await admin.tap_stale(admin.screen.message_id, BillingPick(what="service", code="app_integration").pack())
    assert "仅支持专业版、旗舰版" in answer["text"]
    assert await esign_harness.orders_of(admin) == []
    screen = await admin.tap(re.compile("^版本升级以解锁"))
    assert "⬆️ 版本升级" in screen.text


async def buy(admin, service: str, option: str | re.Pattern[str]):
    await admin.tap("增值服务")
    await admin.tap(f"{service} · 立即购买")
    screen = await admin.tap(option)
    assert "增值服务订单确认" in screen.text
    await admin.tap("提交订单")
    return await admin.pay()


async def test_R7_F9_a_contract_pack_adds_contracts_to_the_account(esign_harness):
    h = esign_harness
    admin, ent = await member_of(h, "advanced", contracts=500)
    await open_billing(admin)
    screen = await buy(admin, "合同加量包", re.compile("^合同加量包 1千份"))
    assert "合同余量：1,500 份" in screen.text
    after = await h.enterprises.get(ent.id)
    assert after.contracts_left == 1_500 and after.services["contract_pack"] == 1_000


async def test_R6_F9_under_experience_signing_reports_and_meeting_signing_are_bought_and_delivered(esign_harness):
    h = esign_harness
    admin, ent = await member_of(h, "experience")
    await open_billing(admin)
    screen = await buy(admin, "签署报告", re.compile("^签署报告 50 份"))
    assert "签署报告 50 份" in screen.text
    await admin.tap("返回费用管理")
    screen = await buy(admin, "腾讯会议·在线签约", re.compile("^2年"))
    assert "腾讯会议·在线签约（至 2028-01-05）" in screen.text
    after = await h.enterprises.get(ent.id)
    assert after.services == {"signing_report": 50}
    assert after.subscriptions == {"meeting_signing": datetime(2028, 1, 5, 2, 0, tzinfo=UTC)}
    home = await admin.send("/start")
    assert "增值服务：签署报告 50 份；腾讯会议·在线签约（至 2028-01-05）" in home.text


async def test_R8_F9_third_party_integration_on_professional_runs_by_the_year(esign_harness):
    h = esign_harness
    admin, ent = await member_of(h, "professional")
    await open_billing(admin)
    screen = await buy(admin, "第三方应用集成", re.compile("^1年"))
    assert "第三方应用集成（至 2027-01-05）" in screen.text
    await admin.tap("返回费用管理")
    await buy(admin, "第三方应用集成", re.compile("^1年"))  # runs on from the first year's end
    assert (await h.enterprises.get(ent.id)).subscriptions["app_integration"] == datetime(2028, 1, 5, 2, 0, tzinfo=UTC)


async def test_F9_a_service_that_became_unavailable_before_submitting_is_not_ordered(esign_harness):
    h = esign_harness
    admin, ent = await member_of(h, "professional")
    await open_billing(admin)
    await admin.tap("增值服务")
    await admin.tap("第三方应用集成 · 立即购买")
    await admin.tap(re.compile("^1年"))
    await h.enterprises.update(ent.id, lambda e: setattr(e, "edition", "advanced"))  # R8 no longer holds
    answer = await tap_answer(admin, "提交订单")
    assert "无法购买" in answer["text"]
    admin.expect("🔒 第三方应用集成：暂不可购买")
    assert await h.orders_of(admin) == []


async def test_F9_a_trial_edition_unlocks_no_service(esign_harness):
    h = esign_harness
    admin, ent = await member_of(h, "advanced")
    now = h.clock.now()

    def trial(e):
        e.trial = Trial(edition="flagship", started_at=now, ends_at=now + timedelta(days=7),
                        previous_edition="advanced", lead_id="l")
        e.trial_used = True

    await h.enterprises.update(ent.id, trial)
    await open_billing(admin)
    screen = await admin.tap("增值服务")
    assert "🔒 第三方应用集成" in screen.text and "试用中的版本不计入" in screen.text
