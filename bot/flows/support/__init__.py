"""Customer-service hand-off (F11, R16, R17): 购买咨询, 联系客服 and 开具发票 hand the
conversation to a human agent in the staff forum group, and back.

- customer.py: the customer's entries, 结束咨询, and the relay of what they write;
- staff.py: the staff group (commands, buttons, agents' messages to the customer);
- desk.py: the Telegram side both share (topics, intake card, copies, edits);
- lifecycle.py: who is told what on claim / transfer / resolve / reopen;
- quotes.py: agent quotes → consultation orders, and staff told of their payment.

The domain (tickets, queue, transcript, bans, flood limit, working hours) is services/support.py.
Wiring (bot/app.py): `router()` right after the error guard, `relay_router()` just before the
fallback, and `TellStaffOfPayments()` on dp.message.
"""
from __future__ import annotations

import logging
from typing import Any

from aiogram import Router

from bot.flows.support import customer, staff
from bot.flows.support.desk import staff_chat_problem
from bot.flows.support.quotes import TellStaffOfPayments, check_quotes, tell_staff_order_paid

__all__ = [
    "TellStaffOfPayments",
    "check_quotes",
    "relay_router",
    "router",
    "staff_chat_problem",
    "tell_staff_order_paid",
]
log = logging.getLogger(__name__)


def router() -> Router:
    """The staff group first (nothing said there reaches the customer flows), then the
    customer's entries (they win over the static 联系客服 of other flows)."""
    r = Router(name="support-hand-off")
    r.include_routers(staff.router(), customer.router())

    async def check_staff_chat(**data: Any) -> None:
        app, bot = data.get("app"), data.get("bot")
        if app is None or bot is None or app.settings.staff_chat_id is None:
            return
        problem = await staff_chat_problem(bot, app.settings.staff_chat_id)
        if problem:  # customers' requests would fail: say so loudly at start-up
            log.error("support.staff_chat_unusable problem=%s", problem)

    r.startup.register(check_staff_chat)
    return r


def relay_router() -> Router:
    return customer.relay_router()
