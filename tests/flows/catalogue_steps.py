"""Shared steps for the catalogue flow tests (F1 overview, F7–F10): an enterprise on a
given edition, a member who verified their phone in the chat, and the way to its 费用管理."""
from __future__ import annotations

import re

from esign_devkit.testing.harness import BotHarness, ChatUser

from services.enterprises import Enterprise

ENTERPRISE = "深圳示例科技有限公司"


async def sign_in(user: ChatUser) -> None:
    """/start, then 费用管理 asks for the phone: shared and verified, back on 首页."""
    english = user.fake.language_code == "en"
    await user.send("/start")
    await user.tap("Billing" if english else "费用管理")
    await user.share_contact()
    await user.send_code()
    user.expect("verified" if english else "验证成功")


async def member_of(harness: BotHarness, edition: str = "advanced", *, days: float | None = 200,
                    contracts: int = 500, role: str = "super_admin", name: str = ENTERPRISE,
                    verified: bool = True, lang: str = "zh") -> tuple[ChatUser, Enterprise]:
    """A user who is `role` of an enterprise on `edition`, signed in (phone verified in chat)."""
    user = harness.user(lang=lang)
    ent = await harness.enterprise_on(name, edition, expires_in_days=days, contracts_left=contracts,
                                      verified=verified, members={user.phone: role})
    await sign_in(user)
    return user, ent


async def open_billing(user: ChatUser, name: str = ENTERPRISE) -> None:
    await user.send("/start")
    await user.tap(re.compile(rf"^🏢 {re.escape(name)} · "))
    user.expect("费用管理" if user.fake.language_code != "en" else "Billing")


async def tap_answer(user: ChatUser, label: str | re.Pattern[str]) -> dict:
    """Press a button and return the bot's callback answer (an alert's text, a notice)."""
    message_id, button = user.telegram.find_button(user.id, label)
    return await user.tap_stale(message_id, button["callback_data"]) or {}
