"""Time-driven work seen from the chat, with the harness's fixed clock: reminders 30, 7 and 1
days before an edition expires, each with a 版本续费 button that opens the renewal; an edition
past its end is back to 体验版; the background task runs in the production process too."""
import re

from tests.flows.catalogue_steps import ENTERPRISE, member_of


async def test_reminders_before_an_edition_expires_each_once_with_a_renew_button(esign_harness):
    h = esign_harness
    admin, ent = await member_of(h, "advanced", days=31)
    member = h.user()
    await h.app.enterprises.add_member(ent.id, member.phone, "member")
    before = len(admin.bot_messages())

    sent = []
    for _ in range(30):  # a tick a day until the last day
        h.advance(days=1)
        report = await h.run_jobs()
        sent += [(kind, chat) for kind, _, chat in report.reminders]
    assert sent == [("edition_expiring", admin.id)] * 3  # 30, 7 and 1 days before; not to the member

    texts = admin.bot_messages()[before:]
    assert [re.search(r"还剩 (\d+) 天", t).group(1) for t in texts] == ["30", "7", "1"]
    assert all(f"「{ENTERPRISE}」的高级版将于 2026-02-05 10:00 到期" in t for t in texts)

    screen = await admin.tap("版本续费")  # from the reminder
    assert "🔁 版本续费" in screen.text and "当前版本：高级版（到期 2026-02-05）" in screen.text


async def test_an_edition_past_its_expiry_is_back_to_experience(esign_harness):
    h = esign_harness
    admin, ent = await member_of(h, "professional", days=3, contracts=800)
    h.advance(days=3, seconds=1)
    report = await h.run_jobs()
    assert report.editions_expired == [ent.id]
    admin.expect("已恢复为体验版")
    screen = await admin.send("/start")
    assert "当前版本：体验版" in screen.text and "到期时间：—" in screen.text and "合同余量：800 份" in screen.text
    after = await h.enterprises.get(ent.id)
    assert (after.edition, after.expires_at) == ("experience", None)


async def test_an_old_reminder_button_after_the_conversation_was_forgotten_asks_for_the_phone(esign_harness):
    h = esign_harness
    admin, _ = await member_of(h, "advanced", days=7)
    await h.run_jobs()
    admin.expect("版本到期提醒")
    await h.dp.storage.set_data(h._storage_key(admin), {})  # the session expired (SESSION_TTL_DAYS)
    screen = await admin.tap("版本续费")
    assert "请先验证手机号" in screen.text


async def test_unpaid_orders_expire_in_the_background(esign_harness):
    h = esign_harness
    admin, _ = await member_of(h, "advanced")
    await admin.send("/start")
    await admin.tap(re.compile("费用管理$"))
    await admin.tap("版本续费")
    await admin.tap(re.compile("^1年"))
    await admin.tap("提交订单")
    order = await h.last_order(admin)
    h.advance(minutes=31)
    assert (await h.run_jobs()).orders_expired == 1
    raw = await h.redis.get(f"{{esign}}:order:{order.id}")
    assert '"status":"expired"' in raw.replace(" ", "")
