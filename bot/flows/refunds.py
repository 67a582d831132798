"""Refunds from the staff group: the alert's 🔁 退款 button, /refunds (the open cases, each with
its button) and /refund_done ID NOTE (a case an agent paid back outside the bot, recorded once).
The refund itself is services.refunds (once per case, however often it is pressed); bot.refunds
tells the buyer."""
from __future__ import annotations

from aiogram import Bot, F, Router
from aiogram.filters import Command, CommandObject
from aiogram.types import CallbackQuery, Message
from aiogram.utils.callback_answer import CallbackAnswer

from bot.callbacks import StaffAction
from bot.context import AppContext
from bot.flows.support.staff import in_staff_chat
from bot.refunds import case_line, mark_done, outcome_text, refund_case
from bot.screens.base import button, inline

LISTED = 20  # /refunds shows the oldest open cases, this many


def router() -> Router:
    r = Router(name="refunds-staff")
    r.message.filter(in_staff_chat)
    r.callback_query.filter(in_staff_chat)

    @r.message(Command("refunds"))
    async def refunds(message: Message, app: AppContext) -> None:
        tr = app.texts.for_lang("zh")
        cases = await app.refunds.open_cases()
        if not cases:
            await message.answer(tr("refunds.list_empty"))
            return
        shown = cases[:LISTED]
        text = "\n".join([tr("refunds.list_title", count=len(cases)), *(case_line(tr, c) for c in shown)])
        rows = [[button(f"{tr('refunds.btn_refund')} {c.id}", StaffAction(action="refund", ticket="-", ref=c.id))]
                for c in shown if c.state.status == "pending" and app.refunds.rail_name(c) not in ("manual", "none")]
        await message.answer(text, reply_markup=inline(*rows) if rows else None)

    @r.message(Command("refund_done"))
    async def refund_done(message: Message, command: CommandObject, app: AppContext, bot: Bot) -> None:
        tr = app.texts.for_lang("zh")
        case_id, _, note = (command.args or "").strip().partition(" ")
        if not case_id:
            await message.answer(tr("refunds.done_usage"))
            return
        by = f"agent:{message.from_user.id}" if message.from_user else "agent"
        outcome = await mark_done(bot, app, case_id, by=by, note=note)
        await message.answer(outcome_text(tr, app, outcome, case_id))

    @r.callback_query(StaffAction.filter(F.action == "refund"))
    async def refund_button(query: CallbackQuery, callback_data: StaffAction, app: AppContext, bot: Bot,
                            callback_answer: CallbackAnswer) -> None:
        tr = app.texts.for_lang("zh")
        outcome = await refund_case(bot, app, callback_data.ref, by=f"agent:{query.from_user.id}")
        text = outcome_text(tr, app, outcome, callback_data.ref)
        callback_answer.text = text[:200]
        if isinstance(query.message, Message):  # the word stays in the group, where the alert was
            thread = query.message.message_thread_id if query.message.is_topic_message else None
            await bot.send_message(query.message.chat.id, text, message_thread_id=thread)

    return r
