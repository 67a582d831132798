"""首页 (F1), 购买套餐 and 联系客服 (R17): reachable from every screen."""
from aiogram import F, Router
from aiogram.filters import CommandStart
from aiogram.types import CallbackQuery, Message

from bot.callbacks import Nav
from bot import screens
from bot.flow import Flow, step_screen
from bot.state.states import Menu
from bot.ui import Screen


@step_screen(Menu.catalog)
async def catalog_screen(flow: Flow) -> Screen:
    return screens.catalog(flow.tr, flow.app.catalog)


@step_screen(Menu.contact)
async def contact_screen(flow: Flow) -> Screen:
    return screens.contact(flow.tr)


def router() -> Router:
    r = Router(name="home")

    @r.message(CommandStart())
    async def start(message: Message, flow: Flow) -> None:
        await flow.go(message, None)

    @r.callback_query(Nav.filter(F.to == "home"))
    async def home(query: CallbackQuery, flow: Flow) -> None:
        await flow.go(query, None)

    @r.callback_query(Nav.filter(F.to == "catalog"))
    async def catalog(query: CallbackQuery, flow: Flow) -> None:
        await flow.go(query, Menu.catalog)

    @r.callback_query(Nav.filter(F.to == "contact"))
    async def contact(query: CallbackQuery, flow: Flow) -> None:
        await flow.go(query, Menu.contact)

    return r
