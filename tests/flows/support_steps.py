"""Shared steps for the customer-service tests (F11, R16, R17): a customer in a private chat and
agents in the staff forum group, on the fake Telegram."""
from __future__ import annotations

import re

from esign_devkit.testing.harness import BotHarness, ChatUser, StaffAgent

from tests.flows import steps

CUSTOMER_LABEL = re.compile(r"^👤 (客户|Customer) [^\n]*[：:]\n")

CLAIM = "🙋 接单"
END = "结束咨询"


async def contact(buyer: ChatUser) -> None:
    """首页 → 联系客服 (R17)."""
    await buyer.send("/start")
    await buyer.tap("联系客服")


async def consult_flagship(buyer: ChatUser) -> None:
    """版本选购 → 旗舰版 → 购买咨询 (R2)."""
    await steps.to_editions(buyer)
    await buyer.tap(steps.FLAGSHIP)
    await buyer.tap("购买咨询")


async def claimed(harness: BotHarness, buyer: ChatUser, name: str = "Li", alias: str | None = "客服小李") -> StaffAgent:
    """The buyer asked for customer service and an agent claimed the ticket."""
    await contact(buyer)
    agent = harness.agent(name=name, alias=alias)
    await agent.tap(CLAIM, topic=buyer)
    return agent


def card(agent: StaffAgent, buyer: ChatUser) -> str:
    """The intake card pinned in the buyer's topic (the latest pinned)."""
    pinned = agent.pinned(buyer)
    assert pinned, f"nothing pinned in the topic; it has: {agent.texts(buyer)}"
    return pinned[-1]["text"]


def said_to(buyer: ChatUser) -> list[dict]:
    """Every message the bot sent the buyer, oldest first (text, caption, media kinds)."""
    return buyer.telegram.messages(buyer.id, from_bot=True)


def last_said(buyer: ChatUser) -> dict:
    return said_to(buyer)[-1]


def banner_pinned(buyer: ChatUser) -> bool:
    telegram = buyer.telegram
    return any("您正在联系客服" in (telegram.message(buyer.id, mid) or {}).get("text", "")
               for mid in telegram.pinned(buyer.id))


def unlabelled(text: str | None) -> str | None:
    """A customer's message as copied into their topic, less the customer label above it."""
    return CUSTOMER_LABEL.sub("", text, count=1) if text else text
