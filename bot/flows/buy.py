"""购买套餐 → 立即购买 → 版本选购 (F2): edition, years, add-on pack, enterprise name, then
phone verification, confirmation and 提交订单. Professional and Flagship, and totals over the
chat limit, go to purchase consultation or the web instead (R2)."""
import re

from aiogram import F, Router
from aiogram.types import CallbackQuery, Message
from aiogram.utils.callback_answer import CallbackAnswer

from bot import screens
from bot.callbacks import BuyAction, Nav, PickEdition, PickPack, PickYears
from bot.flow import Flow, step_screen
from bot.flows.payment import send_invoice
from bot.logs import bind as bind_log
from bot.metrics import ORDERS
from bot.screens import checkout as checkout_screens
from bot.state.states import Buy, Phone
from bot.ui import Screen
from services.catalog import Quote, quote
from services.orders import Channel, Order, OrderStatus

NAME_PATTERN = re.compile(r"\w")  # at least one letter or digit, in any script


@step_screen(Buy.edition)
async def edition_screen(flow: Flow) -> Screen:
    return screens.choose_edition(flow.tr, flow.app.catalog)


@step_screen(Buy.years)
async def years_screen(flow: Flow) -> Screen | None:
    cart = flow.session.cart
    return screens.choose_years(flow.tr, flow.app.catalog, cart) if cart.edition else None


@step_screen(Buy.pack)
async def pack_screen(flow: Flow) -> Screen | None:
    cart = flow.session.cart
    return screens.choose_pack(flow.tr, flow.app.catalog, cart) if cart.edition and cart.years else None


@step_screen(Buy.web_only)
async def web_only_screen(flow: Flow) -> Screen | None:
    app, cart = flow.app, flow.session.cart
    if not cart.edition:
        return None
    total = quote(app.catalog, cart).total_fen if cart.pack_chosen else None
    # 网页端购买 (F12): a link for this cart, so the web page does not ask for it again.
    url = await app.checkout.link_for_cart(
        user_id=flow.user_id, chat_id=flow.state.key.chat_id, cart=cart, phone=flow.session.phone,
        enterprise_name=flow.session.enterprise_name, lang=flow.tr.lang,
    )
    return checkout_screens.web_only(flow.tr, app.catalog, cart, url, total,
                                     ttl_minutes=app.settings.checkout_link_ttl_minutes)


@step_screen(Buy.enterprise_name)
async def enterprise_name_screen(flow: Flow) -> Screen:
    return screens.ask_enterprise_name(flow.tr)


@step_screen(Buy.confirm)
async def confirm_screen(flow: Flow) -> Screen | None:
    session = flow.session
    if not (session.cart.pack_chosen and session.phone and session.enterprise_name):
        return None
    return screens.confirm(flow.tr, quote(flow.app.catalog, session.cart), session.enterprise_name, session.phone)


def router() -> Router:
    r = Router(name="buy")

    @r.callback_query(Nav.filter(F.to == "buy"))
    async def start_buying(query: CallbackQuery, flow: Flow) -> None:
        if flow.session.cart_id is None or await flow.step() not in (Buy.years.state, Buy.pack.state):
            flow.session.new_cart()
        await flow.go(query, Buy.edition)

    @r.callback_query(Buy.edition, PickEdition.filter())
    async def pick_edition(query: CallbackQuery, callback_data: PickEdition, flow: Flow,
                           callback_answer: CallbackAnswer) -> None:
        edition = flow.app.catalog.edition(callback_data.code)
        if edition is None or not edition.sellable:
            await refuse_stale(query, flow, callback_answer)
            return
        flow.session.cart.edition = edition.code
        flow.session.cart.years = None
        flow.session.cart.pack_chosen = False
        await flow.go(query, Buy.years if edition.chat_payable else Buy.web_only)

    @r.callback_query(Nav.filter(F.to == "years"), Buy.pack)
    async def back_to_years(query: CallbackQuery, flow: Flow) -> None:
        await flow.go(query, Buy.years)

    @r.callback_query(Buy.years, PickYears.filter())
    async def pick_years(query: CallbackQuery, callback_data: PickYears, flow: Flow,
                         callback_answer: CallbackAnswer) -> None:
        if callback_data.years not in flow.app.catalog.years:
            await refuse_stale(query, flow, callback_answer)
            return
        flow.session.cart.years = callback_data.years
        await flow.go(query, Buy.pack)

    @r.callback_query(Nav.filter(F.to == "pack"), Buy.enterprise_name)
    async def back_to_pack(query: CallbackQuery, flow: Flow) -> None:
        await flow.go(query, Buy.pack)

    @r.callback_query(Buy.pack, PickPack.filter())
    async def pick_pack(query: CallbackQuery, callback_data: PickPack, flow: Flow,
                        callback_answer: CallbackAnswer) -> None:
        code = None if callback_data.code == "none" else callback_data.code
        if code is not None and flow.app.catalog.pack(code) is None:
            await refuse_stale(query, flow, callback_answer)
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
    async def submit(query: CallbackQuery, flow: Flow) -> None:
        session, app = flow.session, flow.app
        q = quote(app.catalog, session.cart)
        if not q.chat_payable:
            await flow.go(query, Buy.web_only)
            return
        # A cart makes one order (a double tap cannot make two). Its order exists already only
        # when an earlier submit failed before the step moved on (e.g. Telegram refused the
        # invoice): that order is invoiced now, or replaced if it can no longer be paid.
        order, created = await create_order(query, flow, q)
        if not created and order.status is not OrderStatus.PENDING:
            session.renew_cart_id()
            order, _ = await create_order(query, flow, q)
        session.order_id = order.id
        # The invoice first: if it fails, the confirmation stays on screen, matching the step.
        await send_invoice(query.bot, order, flow)
        await flow.go(query, Buy.payment)
        session.new_cart()  # the next purchase starts from a fresh cart

    return r


async def create_order(query: CallbackQuery, flow: Flow, q: Quote) -> tuple[Order, bool]:
    session = flow.session
    order, created = await flow.app.orders.create(
        user_id=flow.user_id,
        chat_id=query.message.chat.id if query.message else flow.user_id,
        cart_id=session.cart_id or "",
        quote=q,
        channel=Channel.CHAT,
        phone=session.phone,
        enterprise_name=session.enterprise_name,
    )
    if created:
        ORDERS.labels("pending_payment", Channel.CHAT.value).inc()
    bind_log(order_id=order.id)
    return order, created


async def refuse_stale(query: CallbackQuery, flow: Flow, callback_answer: CallbackAnswer) -> None:
    """A choice the catalog does not offer (an old or forged button): a short notice, and the
    step shown as it is now (the message is left alone when it already shows it)."""
    callback_answer.text = flow.tr("error.stale")
    await flow.again(query)


async def continue_to_phone(event: Message | CallbackQuery, flow: Flow) -> None:
    """R11: verify the phone unless this conversation already did."""
    if flow.session.phone:
        await flow.go(event, Buy.confirm)
    else:
        await flow.go(event, Phone.number)
