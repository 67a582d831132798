"""购买套餐 → 立即购买 → 版本选购 (F2): edition, years, add-on pack, enterprise name, then
phone verification, confirmation and 提交订单. Professional and Flagship, and totals over the
chat limit, go to purchase consultation or the web instead (R2).

Once the phone is verified, the verified enterprises it has joined are known: the buyer says
which one the purchase is for (or another one, bound after payment), and the purchase is
priced on what that enterprise already has (R18: new edition, renewal or upgrade; a lower
edition is refused before any payment). Bought by its super or billing admin, it is delivered
to the enterprise at payment, with no binding step (R19)."""

from aiogram import F, Router
from aiogram.filters import StateFilter
from aiogram.types import CallbackQuery, Message
from aiogram.utils.callback_answer import CallbackAnswer

from bot import screens
from bot.callbacks import BuyAction, BuyFor, Nav, PickEdition, PickPack, PickYears
from bot.filters import When
from bot.flows.base import Flow, step_screen, unsafe_or
from bot.flows.payment import offer_payment
from bot.runtime.logs import bind as bind_log
from bot.runtime.metrics import ORDERS
from bot.screens import checkout as checkout_screens
from bot.screens.base import Screen
from bot.screens.billing import whom_to_ask
from bot.state.session import OTHER
from bot.state.states import Buy, Phone
from services.catalog import Quote, quote
from services.enterprises import Enterprise
from services.orders import Channel, Order, OrderStatus, UpgradeBasis
from services.purchase_policy import PurchasePlan, plan_purchase
from services.text_input import TextRefused, name_key
from services.text_input import enterprise_name as clean_enterprise_name


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


@step_screen(Buy.review)
async def review_screen(flow: Flow) -> Screen | None:
    cart = flow.session.cart
    if not (cart.edition and cart.years and cart.pack_chosen):
        return None
    return screens.review(flow.tr, flow.app.catalog, cart, quote(flow.app.catalog, cart))


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
    return screens.ask_enterprise_name(flow.tr, flow.session.enterprise_name)


@step_screen(Buy.target)
async def target_screen(flow: Flow) -> Screen | None:
    session = flow.session
    if not (session.cart.pack_chosen and session.phone):
        return None
    targets = await verified_enterprises(flow)
    return screens.buy_target(flow.tr, targets, flow.app.clock.now(), session.phone) if targets else None


@step_screen(Buy.confirm)
async def confirm_screen(flow: Flow) -> Screen | None:
    session = flow.session
    if not (session.cart.pack_chosen and session.phone):
        return None
    target = await chosen_enterprise(flow)
    if target is None:
        if not session.enterprise_name:
            return None
        return screens.confirm(flow.tr, quote(flow.app.catalog, session.cart), session.enterprise_name, session.phone)
    now = flow.app.clock.now()
    plan = plan_purchase(flow.app.catalog, session.cart, target, now)
    refusal = refusal_of(plan, target, session.phone)
    if refusal is not None:
        return screens.purchase_refused(flow.tr, plan, target, session.cart.edition or "", reason=refusal,
                                        whom=whom_to_ask(flow.tr, target))
    return screens.confirm_for(flow.tr, plan, target, session.phone, at_once=can_buy_for(target, session.phone),
                               now=now)


async def verified_enterprises(flow: Flow) -> list[Enterprise]:
    return [e for e in await flow.phone_enterprises() if e.verified]


async def chosen_enterprise(flow: Flow) -> Enterprise | None:
    """The verified enterprise the purchase is for, while the phone is still its member."""
    ent_id, phone = flow.session.buy_for, flow.session.phone
    if not ent_id or ent_id == OTHER:
        return None
    ent = await flow.enterprise(ent_id)
    return ent if ent is not None and ent.verified and phone in ent.members else None


def can_buy_for(ent: Enterprise, phone: str | None) -> bool:
    role = ent.role_of(phone)
    return role is not None and role.can_buy


def refusal_of(plan: PurchasePlan, ent: Enterprise, phone: str | None) -> str | None:
    """Why the purchase cannot be made for this enterprise: a downgrade (R5), or a renewal or
    upgrade asked by a member without billing rights."""
    if plan.refusal is not None:
        return plan.refusal
    if plan.kind in ("renewal", "upgrade") and not can_buy_for(ent, phone):
        return "no_rights"
    return None


def router() -> Router:
    r = Router(name="buy")

    @r.callback_query(Nav.filter(F.to == "buy"))
    async def start_buying(query: CallbackQuery, flow: Flow) -> None:
        if flow.session.cart_id is None or await flow.step() not in (Buy.years.state, Buy.pack.state):
            flow.session.new_cart()
        await flow.go(query, Buy.edition)

    @r.callback_query(StateFilter(Buy.edition), PickEdition.filter())
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

    @r.callback_query(Nav.filter(F.to == "years"), StateFilter(Buy.pack, Buy.review))
    async def back_to_years(query: CallbackQuery, flow: Flow) -> None:
        await flow.go(query, Buy.years)

    @r.callback_query(StateFilter(Buy.years), PickYears.filter())
    async def pick_years(query: CallbackQuery, callback_data: PickYears, flow: Flow,
                         callback_answer: CallbackAnswer) -> None:
        if callback_data.years not in flow.app.catalog.years:
            await refuse_stale(query, flow, callback_answer)
            return
        flow.session.cart.years = callback_data.years
        await flow.go(query, Buy.pack)

    @r.callback_query(Nav.filter(F.to == "pack"), StateFilter(Buy.review, Buy.enterprise_name))
    async def back_to_pack(query: CallbackQuery, flow: Flow) -> None:
        await flow.go(query, Buy.pack)

    @r.callback_query(Nav.filter(F.to == "review"), StateFilter(Buy.enterprise_name))
    async def back_from_name(query: CallbackQuery, flow: Flow) -> None:
        """Back to where the name was asked from: 订单确认 (修改企业名称), else 产品选购页."""
        if flow.session.phone and flow.session.enterprise_name:
            await to_confirmation(query, flow)
        else:
            await flow.go(query, Buy.review)

    @r.callback_query(StateFilter(Buy.review), BuyAction.filter(F.action == "buy_now"))
    async def buy_now(query: CallbackQuery, flow: Flow) -> None:
        """产品选购页's 立即购买 → 信息补充页 (企业名称, 验证手机号), or straight on when known."""
        if not quote(flow.app.catalog, flow.session.cart).chat_payable:
            await flow.go(query, Buy.web_only)
        elif flow.session.phone is None and flow.session.enterprise_name is None:
            await flow.go(query, Buy.enterprise_name)
        else:
            await continue_to_phone(query, flow)

    @r.callback_query(StateFilter(Buy.confirm), BuyAction.filter(F.action == "name"))
    async def change_name(query: CallbackQuery, flow: Flow) -> None:
        await flow.go(query, Buy.enterprise_name)  # 修改企业名称: a typo is fixed here

    @r.callback_query(StateFilter(Buy.enterprise_name), BuyAction.filter(F.action == "keep_name"))
    async def keep_name(query: CallbackQuery, flow: Flow) -> None:
        if flow.session.enterprise_name is None:
            await flow.again(query)
            return
        await continue_to_phone(query, flow)

    @r.callback_query(StateFilter(Buy.pack), PickPack.filter())
    async def pick_pack(query: CallbackQuery, callback_data: PickPack, flow: Flow,
                        callback_answer: CallbackAnswer) -> None:
        code = None if callback_data.code == "none" else callback_data.code
        if code is not None and flow.app.catalog.pack(code) is None:
            await refuse_stale(query, flow, callback_answer)
            return
        cart = flow.session.cart
        cart.pack, cart.pack_chosen = code, True
        await flow.go(query, Buy.review if quote(flow.app.catalog, cart).chat_payable else Buy.web_only)

    @r.message(StateFilter(Buy.enterprise_name), When(F.text))
    async def enterprise_name(message: Message, flow: Flow) -> None:
        try:
            name = clean_enterprise_name(message.text or "")  # NFKC; no direction or invisible characters
        except TextRefused as refused:
            await flow.again(message, flow.tr(unsafe_or(refused, "buy.name_invalid")))
            return
        session = flow.session
        session.enterprise_name, session.name_draft = name, True
        if session.buy_for != OTHER:
            session.buy_for = None  # an enterprise found by the old name: found again by the new one
        await continue_to_phone(message, flow)

    @r.callback_query(StateFilter(Buy.target), BuyFor.filter())
    async def pick_target(query: CallbackQuery, callback_data: BuyFor, flow: Flow,
                          callback_answer: CallbackAnswer) -> None:
        if callback_data.ent != OTHER and callback_data.ent not in {e.id for e in await verified_enterprises(flow)}:
            await refuse_stale(query, flow, callback_answer)  # not an enterprise this phone joined
            return
        flow.session.buy_for = callback_data.ent
        await to_confirmation(query, flow)

    @r.callback_query(StateFilter(Buy.confirm), BuyFor.filter(F.ent == OTHER))
    async def for_another(query: CallbackQuery, flow: Flow) -> None:
        flow.session.buy_for = OTHER
        await to_confirmation(query, flow)

    @r.callback_query(StateFilter(Buy.confirm), BuyAction.filter(F.action == "target"))
    async def change_target(query: CallbackQuery, flow: Flow) -> None:
        await flow.go(query, Buy.target)

    @r.callback_query(StateFilter(Buy.confirm), BuyAction.filter(F.action == "submit"))
    async def submit(query: CallbackQuery, flow: Flow) -> None:
        session, app = flow.session, flow.app
        target = await chosen_enterprise(flow)
        upgrade: UpgradeBasis | None = None
        delivered_to: Enterprise | None = None
        if target is None:
            q = quote(app.catalog, session.cart)
            if not q.chat_payable:
                await flow.go(query, Buy.web_only)
                return
            name = session.enterprise_name
        else:
            plan = plan_purchase(app.catalog, session.cart, target, app.clock.now())
            if refusal_of(plan, target, session.phone) is not None or plan.quote is None:
                await flow.again(query)  # the refusal, as the confirmation shows it now
                return
            q, upgrade, name = plan.quote, plan.upgrade_basis(), target.name
            delivered_to = target if can_buy_for(target, session.phone) else None
        # A cart makes one order (a double tap cannot make two). Its order exists already only
        # when an earlier submit failed before the step moved on (e.g. Telegram refused the
        # invoice): that order is invoiced now, or replaced if it can no longer be paid.
        order, created = await create_order(query, flow, q, name, delivered_to, upgrade)
        if not created and order.status is not OrderStatus.PENDING:
            session.renew_cart_id()
            order, _ = await create_order(query, flow, q, name, delivered_to, upgrade)
        await offer_payment(query, flow, order)  # the invoice first: if it fails, the confirmation stays
        session.new_cart()  # the next purchase starts from a fresh cart
        session.name_draft = False  # an order used the name: it is kept for the next purchase (R11)

    return r


async def to_confirmation(event: Message | CallbackQuery, flow: Flow, *, notice: str | None = None) -> None:
    """The phone is verified: whom the purchase is for (R18, R19), then 订单确认. An enterprise
    named as typed is taken without asking, and so is the one verified enterprise an admin buys
    for when no name was typed; with none joined, it is bound after payment, and that needs
    the enterprise name (信息补充页)."""
    session = flow.session
    targets = await verified_enterprises(flow)
    if not (session.buy_for == OTHER or any(e.id == session.buy_for for e in targets)):
        named = [e for e in targets if name_key(e.name) == name_key(session.enterprise_name or "")]
        if not targets:
            session.buy_for = OTHER
        elif len(named) == 1:
            session.buy_for = named[0].id
        elif session.enterprise_name is None and len(targets) == 1 and can_buy_for(targets[0], session.phone):
            session.buy_for = targets[0].id  # 更换购买企业 on the confirmation
        else:
            await flow.go(event, Buy.target, notice=notice)
            return
    if session.buy_for == OTHER and session.enterprise_name is None:
        await flow.go(event, Buy.enterprise_name, notice=notice)
        return
    await flow.go(event, Buy.confirm, notice=notice)


async def create_order(query: CallbackQuery, flow: Flow, q: Quote, enterprise_name: str | None,
                       delivered_to: Enterprise | None, upgrade: UpgradeBasis | None) -> tuple[Order, bool]:
    session = flow.session
    order, created = await flow.app.orders.create(
        user_id=flow.user_id,
        chat_id=query.message.chat.id if query.message else flow.user_id,
        cart_id=session.cart_id or "",
        quote=q,
        channel=Channel.CHAT if q.chat_payable else Channel.WEB,
        phone=session.phone,
        enterprise_name=enterprise_name,
        enterprise_id=delivered_to.id if delivered_to else None,
        upgrade=upgrade,
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
        await to_confirmation(event, flow)
    else:
        await flow.go(event, Phone.number)
