"""Shared steps for the flow tests: walk a buyer to a given step of the 高级版 purchase (F2)."""
from __future__ import annotations

import re

from esign_devkit.testing.harness import BotHarness, ChatUser

from services.orders import Order

ENTERPRISE_NAME = "深圳示例科技有限公司"
ADVANCED = re.compile(r"^高级版 · ")
PROFESSIONAL = re.compile(r"^专业版 · ")
FLAGSHIP = re.compile(r"^旗舰版 · ")
NO_PACK = "不加购合同加量包"


def years_button(years: int) -> re.Pattern[str]:
    return re.compile(rf"^{years}年 · ")


async def to_editions(buyer: ChatUser) -> None:
    await buyer.send("/start")
    await buyer.tap("购买套餐")
    await buyer.tap("立即购买")


async def to_years(buyer: ChatUser) -> None:
    await to_editions(buyer)
    await buyer.tap(ADVANCED)


async def to_pack(buyer: ChatUser, years: int = 1) -> None:
    await to_years(buyer)
    await buyer.tap(years_button(years))


async def to_review(buyer: ChatUser, years: int = 1, pack: str | re.Pattern[str] = NO_PACK) -> None:
    """产品选购页: the edition, years and pack chosen, with its 立即购买."""
    await to_pack(buyer, years)
    await buyer.tap(pack)


async def to_enterprise_name(buyer: ChatUser, years: int = 1, pack: str | re.Pattern[str] = NO_PACK) -> None:
    await to_review(buyer, years, pack)
    await buyer.tap("立即购买")


async def to_phone(buyer: ChatUser, years: int = 1) -> None:
    await to_enterprise_name(buyer, years)
    await buyer.send(ENTERPRISE_NAME)


async def to_code(buyer: ChatUser, years: int = 1) -> None:
    await to_phone(buyer, years)
    await buyer.share_contact()


async def to_confirmation(harness: BotHarness, buyer: ChatUser, years: int = 1) -> None:
    await to_code(buyer, years)
    await buyer.send(harness.sms.last_code(buyer.phone))


async def to_payment(harness: BotHarness, buyer: ChatUser, years: int = 1) -> Order:
    """Submit the order; returns it (pending, with its invoice in the chat)."""
    await to_confirmation(harness, buyer, years)
    await buyer.tap("提交订单")
    [order] = await harness.orders.list_for_user(buyer.id)
    return order


async def paid_order(harness: BotHarness, buyer: ChatUser, years: int = 1) -> Order:
    order = await to_payment(harness, buyer, years)
    await buyer.pay()
    paid = await harness.orders.get(order.id)
    assert paid is not None
    return paid


# Walkers with one signature, (harness, buyer), for tests that visit every step.

async def at_home(h, buyer):
    await buyer.send("/start")


async def at_catalog(h, buyer):
    await buyer.send("/start")
    await buyer.tap("购买套餐")


async def at_editions(h, buyer):
    await to_editions(buyer)


async def at_years(h, buyer):
    await to_years(buyer)


async def at_pack(h, buyer):
    await to_pack(buyer, years=2)


async def at_review(h, buyer):
    await to_review(buyer, years=2)


async def at_web_only(h, buyer):
    await to_editions(buyer)
    await buyer.tap(PROFESSIONAL)


async def at_confirmation(h, buyer):
    await to_confirmation(h, buyer)


async def at_payment(h, buyer):
    await to_payment(h, buyer)


async def at_my_orders(h, buyer):
    await to_payment(h, buyer)
    await buyer.tap("我的订单")


async def at_order_details(h, buyer):
    await at_my_orders(h, buyer)
    await buyer.tap(re.compile("^高级版 1年"))


async def at_bind_choose(h, buyer):
    await paid_order(h, buyer)  # then the enterprise is verified, the buyer its super admin (R11–R13)
    await h.enterprise(ENTERPRISE_NAME, members={buyer.phone: "super_admin"})
    await buyer.tap("立即绑定")


async def at_bind_confirm(h, buyer):
    await at_bind_choose(h, buyer)
    await buyer.tap(ENTERPRISE_NAME)


async def at_phone_number(h, buyer):
    await to_phone(buyer)


async def at_phone_code(h, buyer):
    await to_code(buyer)


async def at_enterprise_name(h, buyer):
    await to_enterprise_name(buyer)


async def at_paid(h, buyer):
    await paid_order(h, buyer)


async def at_bound(h, buyer):
    await at_bind_confirm(h, buyer)
    await buyer.tap("确认绑定")


def button_data(buyer: ChatUser, label: str | re.Pattern[str]) -> tuple[int, str]:
    """(message_id, callback_data) of a button on the chat, newest message first."""
    message_id, button = buyer.telegram.find_button(buyer.id, label)
    return message_id, button["callback_data"]
