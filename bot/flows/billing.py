"""费用管理 (F1): one enterprise's billing screen, and what the renew, upgrade and value-added
flows share: who may buy (R: super admin or billing admin; the others are told whom to ask),
提交订单 for an enterprise (delivered at once on payment, no binding), the in-chat invoice, and
the web link for what the chat cannot take (R2, R4)."""
from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import Protocol

from aiogram import F, Router
from aiogram.filters import StateFilter
from aiogram.types import CallbackQuery, Message
from aiogram.utils.callback_answer import CallbackAnswer

from bot.callbacks import BillingEnt, BillingGo
from bot.filters import When
from bot.flows.base import Flow, step_screen
from bot.flows.payment import offer_payment
from bot.flows.phone import code_refused, request_code
from bot.screens import billing as screens
from bot.screens.base import Screen
from bot.state.states import Billing, TrialApp
from services.billing import BillingCart
from services.catalog import Quote
from services.enterprises import Enterprise
from services.orders import Channel, Order, OrderStatus, UpgradeBasis
from services.phones import InvalidPhone, mask_phone, normalize_phone
from services.trials import TrialForm

log = logging.getLogger(__name__)


# --- who is asking, for which enterprise ------------------------------------------------------


async def remember_chat(flow: Flow) -> None:
    """The reminders (services.scheduler) go to the chats where a phone was verified: noted
    once per phone and language (the session keeps what was noted), not on every visit."""
    session = flow.session
    if session.phone and session.chat_noted != session.chat_mark(flow.tr.lang):
        await flow.app.enterprises.remember_chat(session.phone, flow.user_id, flow.tr.lang)
        session.chat_noted = session.chat_mark(flow.tr.lang)


async def current_enterprise(flow: Flow) -> Enterprise | None:
    """The enterprise of the billing flow on screen, while the user's phone is a member."""
    ent_id, phone = flow.session.billing.enterprise_id, flow.session.phone
    ent = await flow.app.enterprises.get(ent_id) if ent_id else None
    return ent if ent is not None and phone and phone in ent.members else None


class Entry(Protocol):
    """What a purchase for an enterprise does first, once the enterprise is known."""

    def __call__(self, event: Message | CallbackQuery, flow: Flow, ent: Enterprise, action: str, *,
                 notice: str | None = None, callback_answer: CallbackAnswer | None = None) -> Awaitable[None]: ...


# 购买套餐's 版本续费, 版本升级 and each service's 立即购买 name no enterprise: the flows register
# here what they do once it is known (after the phone is verified, or the enterprise chosen).
ENTRIES: dict[str, Entry] = {}


def entry(kind: str) -> Callable[[Entry], Entry]:
    def register(enter: Entry) -> Entry:
        ENTRIES[kind] = enter
        return enter
    return register


def entry_for(action: str) -> Entry | None:
    return ENTRIES.get(action.split("_", 1)[0])  # "svc_contract_pack" → the "svc" entry


async def resolve_enterprise(event: Message | CallbackQuery, flow: Flow, action: str, *,
                             notice: str | None = None) -> Enterprise | None:
    """The enterprise a 购买套餐 purchase is for: the phone's only one; a choice among several;
    none joined: said so, with 了解企业版服务 and 企业认证指引."""
    joined = await flow.phone_enterprises()
    if len(joined) == 1:
        ent = joined[0]
        if flow.session.billing.enterprise_id != ent.id:
            flow.session.billing = BillingCart(enterprise_id=ent.id)
        return ent
    if not joined:
        await flow.go(event, Billing.no_enterprise, notice=notice)
    else:
        flow.session.billing = BillingCart(resume=BillingEnt(action=action, ent=screens.NONE).pack())
        await flow.go(event, Billing.pick, notice=notice)
    return None


async def open_enterprise(query: CallbackQuery, flow: Flow, pressed: BillingEnt,
                          callback_answer: CallbackAnswer) -> Enterprise | None:
    """A billing button naming an enterprise: it must be one the user's verified phone joined.
    Without a verified phone (a new conversation, an old reminder) the phone is verified first;
    one naming none (购买套餐) is for the phone's enterprise."""
    if not flow.session.phone:
        await start_sign_in(query, flow, pressed)
        return None
    if pressed.ent == screens.NONE and entry_for(pressed.action) is not None:
        return await resolve_enterprise(query, flow, pressed.action)
    ent_id = pressed.ent
    ent = await flow.app.enterprises.get(ent_id) if ent_id != screens.NONE else None
    if ent is None or flow.session.phone not in ent.members:
        callback_answer.text = flow.tr("billing.not_member")
        callback_answer.show_alert = True
        await flow.again(query)
        return None
    if flow.session.billing.enterprise_id != ent.id:
        flow.session.billing = BillingCart(enterprise_id=ent.id)
    await remember_chat(flow)
    return ent


async def may_buy(event: Message | CallbackQuery, flow: Flow, ent: Enterprise,
                  callback_answer: CallbackAnswer | None, *, notice: str | None = None) -> bool:
    """Buying for an enterprise needs it verified and the user its super or billing admin; the
    others stay on its billing screen and are told whom to ask (an alert on a tap, else a notice)."""
    role = ent.role_of(flow.session.phone)
    if ent.verified and role is not None and role.can_buy:
        return True
    text = flow.tr("billing.unverified_note") if not ent.verified else screens.whom_to_ask(flow.tr, ent)
    if callback_answer is not None:
        callback_answer.text = text[:200]
        callback_answer.show_alert = True
        await flow.go(event, Billing.enterprise, notice=notice)
    else:
        await flow.go(event, Billing.enterprise, notice="\n\n".join(filter(None, [notice, text])))
    return False


def new_purchase(flow: Flow, ent: Enterprise, kind: str) -> BillingCart:
    cart = BillingCart(enterprise_id=ent.id, kind=kind, cart_id=secrets.token_hex(8))
    flow.session.billing = cart
    return cart


# --- 提交订单 for an enterprise -------------------------------------------------------------------


async def submit_order(query: CallbackQuery, flow: Flow, ent: Enterprise, q: Quote,
                       upgrade: UpgradeBasis | None = None) -> None:
    """One order per cart; in chat it is invoiced, otherwise it waits for its web payment."""
    session, app = flow.session, flow.app
    cart = session.billing
    if not cart.cart_id:
        cart.cart_id = secrets.token_hex(8)

    async def create() -> tuple[Order, bool]:
        return await app.orders.create(
            user_id=flow.user_id,
            chat_id=query.message.chat.id if query.message else flow.user_id,
            cart_id=cart.cart_id or "",
            quote=q,
            channel=Channel.CHAT if q.chat_payable else Channel.WEB,
            phone=session.phone,
            enterprise_name=ent.name,
            enterprise_id=ent.id,
            upgrade=upgrade,
        )

    order, created = await create()
    if not created and order.status is not OrderStatus.PENDING:
        cart.cart_id = secrets.token_hex(8)
        order, _ = await create()
    session.order_id = order.id
    log.info("billing.order kind=%s order=%s enterprise=%s chat_payable=%s", order.kind.value, order.id, ent.id,
             q.chat_payable)
    await offer_payment(query, flow, order)  # the invoice first: if it fails, the confirmation stays
    cart.cart_id = secrets.token_hex(8)  # the next 提交订单 is a new order


async def checkout_url(flow: Flow, order: Order) -> str:
    """The web checkout link for the order."""
    return await flow.app.checkout.link_for_order(order, lang=flow.tr.lang)


# --- steps -----------------------------------------------------------------------------------------


# --- who is asking: the member's phone, verified by SMS code (F3's service) -----------------------


async def start_sign_in(event: Message | CallbackQuery, flow: Flow, pressed: BillingEnt) -> None:
    """Billing needs to know whose phone is asking; the button pressed goes on afterwards."""
    flow.session.billing = BillingCart(resume=pressed.pack())
    await flow.go(event, Billing.phone, notice=flow.tr("billing.verify_first"))


async def signed_in(event: Message | CallbackQuery, flow: Flow, notice: str) -> None:
    """Back to what was asked for: the enterprise's billing, the trial, or 首页."""
    session = flow.session
    await remember_chat(flow)
    pressed = BillingEnt.unpack(session.billing.resume) if session.billing.resume else None
    session.billing = BillingCart()
    enter = entry_for(pressed.action) if pressed is not None else None
    if pressed is not None and enter is not None and pressed.ent == screens.NONE:  # from 购买套餐
        ent = await resolve_enterprise(event, flow, pressed.action, notice=notice)
        if ent is not None:
            await enter(event, flow, ent, pressed.action, notice=notice)
        return
    if pressed is not None and pressed.ent != screens.NONE:
        ent = await flow.app.enterprises.get(pressed.ent)
        if ent is not None and session.phone in ent.members:
            session.billing = BillingCart(enterprise_id=ent.id)
            await flow.go(event, Billing.enterprise, notice=notice)
            return
    if pressed is not None and pressed.action.startswith("trial"):  # "trial_<edition>": chosen before
        session.trial = TrialForm(edition=pressed.action.removeprefix("trial_") if "_" in pressed.action else None)
        await flow.go(event, TrialApp.enterprise, notice=notice)
        return
    joined = await flow.app.enterprises.for_phone(session.phone or "")
    await flow.go(event, None if joined else Billing.no_enterprise, notice=notice)


async def take_phone(message: Message, flow: Flow, raw: str, *, proven: bool = False) -> None:
    try:
        phone = normalize_phone(raw)
    except InvalidPhone:
        await flow.again(message, flow.tr("phone.invalid"))
        return
    await send_code(message, flow, phone, proven=proven)


async def send_code(event: Message | CallbackQuery, flow: Flow, phone: str, *, proven: bool = False) -> None:
    def remember(pending: str) -> None:
        flow.session.billing.phone_pending = pending

    await request_code(event, flow, phone, number_step=Billing.phone, code_step=Billing.code, remember=remember,
                       proven=proven)


@step_screen(Billing.phone)
async def phone_screen(flow: Flow) -> Screen:
    return screens.ask_phone(flow.tr)


@step_screen(Billing.code)
async def code_screen(flow: Flow) -> Screen | None:
    pending = flow.session.billing.phone_pending
    return screens.ask_code(flow.tr, pending, flow.session.code_state) if pending else None


@step_screen(Billing.enterprise)
async def enterprise_screen(flow: Flow) -> Screen | None:
    ent = await current_enterprise(flow)
    if ent is None:
        return None
    return screens.enterprise(flow.tr, ent, flow.app.catalog, flow.app.clock.now(), flow.session.phone)


@step_screen(Billing.pick)
async def pick_screen(flow: Flow) -> Screen | None:
    resume, phone = flow.session.billing.resume, flow.session.phone
    joined = await flow.phone_enterprises()
    if not (resume and phone and joined):
        return None
    return screens.pick_enterprise(flow.tr, BillingEnt.unpack(resume).action, joined, phone)


@step_screen(Billing.no_enterprise)
async def no_enterprise_screen(flow: Flow) -> Screen | None:
    return screens.no_enterprise(flow.tr, flow.session.phone) if flow.session.phone else None


@step_screen(Billing.web_pay)
async def web_pay_screen(flow: Flow) -> Screen | None:
    order = await flow.order()
    if order is None:
        return None
    if order.status is not OrderStatus.PENDING:
        from bot import screens as core
        bound_to = await flow.app.enterprises.get(order.enterprise_id) if order.enterprise_id else None
        return core.order_detail(flow.tr, order, bound_to, flow.app.clock.now())
    return screens.web_pay(flow.tr, order, await checkout_url(flow, order), flow.app.catalog)


def router() -> Router:
    r = Router(name="billing")

    @r.callback_query(BillingEnt.filter(F.action == "view"))
    async def view(query: CallbackQuery, callback_data: BillingEnt, flow: Flow, callback_answer: CallbackAnswer) -> None:
        if callback_data.ent == screens.NONE:  # 首页's 费用管理 without an enterprise
            if not flow.session.phone:
                await start_sign_in(query, flow, callback_data)
            else:
                await remember_chat(flow)
                await flow.go(query, Billing.no_enterprise)
            return
        if await open_enterprise(query, flow, callback_data, callback_answer):
            await flow.go(query, Billing.enterprise)

    @r.message(StateFilter(Billing.phone), When(F.contact))
    async def shared_phone(message: Message, flow: Flow) -> None:
        assert message.contact is not None  # the filter above
        if message.from_user is None or message.contact.user_id != message.from_user.id:  # someone else's card
            await flow.again(message, flow.tr("phone.not_own"))
            return
        await take_phone(message, flow, message.contact.phone_number, proven=True)  # their own: Telegram says so

    @r.message(StateFilter(Billing.phone), When(F.text))
    async def typed_phone(message: Message, flow: Flow) -> None:
        await take_phone(message, flow, message.text or "")

    @r.message(StateFilter(Billing.code), When(F.text))
    async def typed_code(message: Message, flow: Flow) -> None:
        cart, tr = flow.session.billing, flow.tr
        result = await flow.app.codes.verify(flow.user_id, cart.phone_pending or "", message.text or "")
        if result.ok:
            flow.session.phone, cart.phone_pending = cart.phone_pending, None
            await signed_in(message, flow, tr("phone.verified", phone=mask_phone(flow.session.phone)))
        else:
            await code_refused(message, flow, result)

    @r.message(StateFilter(Billing.phone, Billing.code))
    async def not_text(message: Message, flow: Flow) -> None:
        await flow.again(message, flow.tr("error.text_only"))

    @r.callback_query(StateFilter(Billing.code), BillingGo.filter(F.action == "resend"))
    async def resend(query: CallbackQuery, flow: Flow) -> None:
        await send_code(query, flow, flow.session.billing.phone_pending or "")

    @r.callback_query(StateFilter(Billing.code), BillingGo.filter(F.action == "change"))
    async def change(query: CallbackQuery, flow: Flow) -> None:
        flow.session.billing.phone_pending = None
        await flow.go(query, Billing.phone)

    return r
