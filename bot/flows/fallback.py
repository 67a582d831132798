"""Last in line: input no step expected. The user is told what was wrong and the current
step is shown again; a stale button gets a short notice. Nothing is lost."""
from aiogram import Router
from aiogram.types import CallbackQuery, Message
from aiogram.utils.callback_answer import CallbackAnswer

from bot.flows.base import Flow
from bot.state.states import Buy, Phone

TEXT_STEPS = {Buy.enterprise_name.state, Phone.number.state, Phone.code.state}


def router() -> Router:
    r = Router(name="fallback")

    @r.message()
    async def unexpected_message(message: Message, flow: Flow) -> None:
        step = await flow.step()
        hint = "error.text_only" if step in TEXT_STEPS else "error.use_buttons"
        await flow.again(message, flow.tr(hint))

    @r.callback_query()
    async def stale_button(query: CallbackQuery, flow: Flow, callback_answer: CallbackAnswer) -> None:
        callback_answer.text = flow.tr("error.stale")

    return r
