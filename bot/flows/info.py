"""Information screens from 首页 (退费说明 R5, 开票说明 R16, 常见问题) and the personal-edition
entrance 了解企业版服务 (R9): the edition details, where only 高级版 can be bought in chat."""
from __future__ import annotations

from aiogram import F, Router
from aiogram.types import CallbackQuery
from aiogram.utils.callback_answer import CallbackAnswer

from bot.callbacks import InfoPage
from bot.flows.base import Flow, step_screen
from bot.screens import info as screens
from bot.screens.base import Screen
from bot.state.states import Buy, Info

FAQ_URL = "https://cloud.tencent.com/document/product/1323/71859"  # 定价与购买常见问题 (the guide's link)
PAGES = {"refund": Info.refund, "invoice": Info.invoice, "faq": Info.faq, "editions": Info.editions,
         "verify": Info.verify}


@step_screen(Info.refund)
async def refund_screen(flow: Flow) -> Screen:
    return screens.refund(flow.tr)


@step_screen(Info.invoice)
async def invoice_screen(flow: Flow) -> Screen:
    return screens.invoice(flow.tr)


@step_screen(Info.faq)
async def faq_screen(flow: Flow) -> Screen:
    return screens.faq(flow.tr, flow.app.catalog, FAQ_URL)


@step_screen(Info.editions)
async def editions_screen(flow: Flow) -> Screen:
    return screens.editions(flow.tr, flow.app.catalog)


@step_screen(Info.verify)
async def verify_screen(flow: Flow) -> Screen:
    return screens.verify_guide(flow.tr, flow.app.settings.enterprise_verification_guide_url)


def router() -> Router:
    r = Router(name="info")

    @r.callback_query(InfoPage.filter(F.page.in_(PAGES)))
    async def page(query: CallbackQuery, callback_data: InfoPage, flow: Flow) -> None:
        await flow.go(query, PAGES[callback_data.page])

    @r.callback_query(InfoPage.filter(F.page.startswith("buy_")))
    async def buy(query: CallbackQuery, callback_data: InfoPage, flow: Flow, callback_answer: CallbackAnswer) -> None:
        """立即购买 from the edition details: the purchase of F2 with the edition chosen (R9, R10);
        an edition the chat cannot take goes to 购买咨询 / 网页端购买 (R2), as 版本选购 does."""
        edition = flow.app.catalog.edition(callback_data.page.removeprefix("buy_"))
        if edition is None or not edition.sellable:
            callback_answer.text = flow.tr("error.stale")
            await flow.again(query)
            return
        flow.session.new_cart()
        flow.session.cart.edition = edition.code
        await flow.go(query, Buy.years if edition.chat_payable else Buy.web_only)

    return r
