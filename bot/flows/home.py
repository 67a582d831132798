"""首页 (F1), 购买套餐 and 联系客服 (R17): reachable from every screen."""
from aiogram import F, Router
from aiogram.filters import CommandStart
from aiogram.types import CallbackQuery, Message

from bot import screens
from bot.callbacks import Nav
from bot.flows.base import Flow, step_screen
from bot.flows.billing import remember_chat
from bot.screens.base import Screen
from bot.state.states import Menu


@step_screen(Menu.catalog)
async def catalog_screen(flow: Flow) -> Screen:
    return screens.catalog(flow.tr, flow.app.catalog)


# 联系客服 (R17) and its step (Menu.contact) are the customer-service hand-off's: bot/flows/support.


def router() -> Router:
    r = Router(name="home")

    @r.message(CommandStart())
    async def start(message: Message, flow: Flow) -> None:
        if flow.session.name_draft:  # a name no order used yet: starting over forgets it
            flow.session.enterprise_name, flow.session.name_draft = None, False
        await remember_chat(flow)  # the billing reminders go to the chats of a verified phone
        await flow.go(message, None)

    @r.callback_query(Nav.filter(F.to == "home"))
    async def home(query: CallbackQuery, flow: Flow) -> None:
        await remember_chat(flow)
        await flow.go(query, None)

    @r.callback_query(Nav.filter(F.to == "catalog"))
    async def catalog(query: CallbackQuery, flow: Flow) -> None:
        await flow.go(query, Menu.catalog)

    return r
