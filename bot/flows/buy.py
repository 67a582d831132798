"""购买套餐 → 立即购买 → 版本选购 (F2): edition, years, add-on pack, enterprise name, then
phone verification, confirmation and 提交订单. Professional and Flagship, and totals over the
chat limit, go to purchase consultation or the web instead (R2)."""
import re

from aiogram import F, Router
from aiogram.types import CallbackQuery, Message
from aiogram.utils.callback_answer import CallbackAnswer

from bot.callbacks import BuyAction, Nav, PickEdition, PickPack, PickYears
from bot.flow import Flow
from bot.flows.payment import send_invoice
from bot.state.states import Buy, Phone
from services.catalog import quote
from services.orders import Channel

NAME_PATTERN = re.compile(r"\w")  # at least one letter or digit, in any script


def router() -> Router:
    r = Router(name="buy")

    @r.callback_query(Nav.filter(F.to == "buy"))
    async def start_buying(query: CallbackQuery, flow: Flow) -> None:
        if flow.session.cart_id is None or await flow.step() not in (Buy.years.state, Buy.pack.state):
            flow.session.new_cart()
        await flow.go(query, Buy.edition)

    @r.callback_query(Buy.edition, PickEdition.filter())
    async def pick_edition(query: CallbackQuery, callback_data: PickEdition, flow: Flow) -> None:
        edition = flow.app.catalog.edition(callback_data.code)
        if edition is None or not edition.sellable:
            await flow.again(query, flow.tr("error.stale"))
            return
        flow.session.cart.edition = edition.code
        flow.session.cart.years = None
        flow.session.cart.pack_chosen = False
        await flow.go(query, Buy.years if edition.chat_payable else Buy.web_only)

    @r.callback_query(Nav.filter(F.to == "years"), Buy.pack)
    async def back_to_years(query: CallbackQuery, flow: Flow) -> None:
        await flow.go(query, Buy.years)

    @r.callback_query(Buy.years, PickYears.filter())
    async def pick_years(query: CallbackQuery, callback_data: PickYears, flow: Flow) -> None:
        if callback_data.years not in flow.app.catalog.years:
            await flow.again(query, flow.tr("error.stale"))
            return
        flow.session.cart.years = callback_data.years
        await flow.go(query, Buy.pack)

    @r.callback_query(Nav.filter(F.to == "pack"), Buy.enterprise_name)
    async def back_to_pack(query: CallbackQuery, flow: Flow) -> None:
        await flow.go(query, Buy.pack)

    @r.callback_query(Buy.pack, PickPack.filter())
    async def pick_pack(query: CallbackQuery, callback_data: PickPack, flow: Flow) -> None:
        code = None if callback_data.code == "none" else callback_data.code
        if code is not None and flow.app.catalog.pack(code) is None:
            await flow.again(query, flow.tr("error.stale"))
            return
        cart = flow.session.cart
        cart.pack, cart.pack_chosen = code, True
        if not quote(flow.app.catalog, cart).chat_payable:
            await flow.go(query, Buy.web_only)
        elif flow.session.enterprise_name is None:
            await flow.go(query, Buy.enterprise_name)
        else:
            await continue_to_phone(query, flow)

    @r.message(Buy.enterprise_name, F.text)
    async def enterprise_name(message: Message, flow: Flow) -> None:
        name = " ".join((message.text or "").split())
        if not (2 <= len(name) <= 50) or not NAME_PATTERN.search(name) or name.startswith("/"):
            await flow.again(message, flow.tr("buy.name_invalid"))
            return
        flow.session.enterprise_name = name
        await continue_to_phone(message, flow)

    @r.callback_query(Buy.confirm, BuyAction.filter(F.action == "submit"))
    async def submit(query: CallbackQuery, flow: Flow, callback_answer: CallbackAnswer) -> None:
        session, app = flow.session, flow.app
        q = quote(app.catalog, session.cart)
        if not q.chat_payable:
            await flow.go(query, Buy.web_only)
            return
        order, created = await app.orders.create(
            user_id=flow.user_id,
            chat_id=query.message.chat.id if query.message else flow.user_id,
            cart_id=session.cart_id or "",
            quote=q,
            channel=Channel.CHAT,
            phone=session.phone,
            enterprise_name=session.enterprise_name,
        )
        session.order_id = order.id
        if not created:
            callback_answer.text = flow.tr("buy.already_submitted")
            await flow.go(query, Buy.payment)
            return
        await flow.go(query, Buy.payment)
        await send_invoice(query.bot, order, flow)
        session.new_cart()  # the next purchase starts from a fresh cart

    return r


async def continue_to_phone(event: Message | CallbackQuery, flow: Flow) -> None:
    """R11: verify the phone unless this conversation already did."""
    if flow.session.phone:
        await flow.go(event, Buy.confirm)
    else:
        await flow.go(event, Phone.number)
