"""增值服务 value-added services (R6–R8, F9): 合同加量包 (1,000 / 10,000), 签署报告 (in packs),
腾讯会议·在线签约 and 第三方应用集成 (yearly), each delivered to the enterprise's account.

All four are always listed; one the enterprise cannot buy says which rule refuses it, why,
and what unlocks it (services.value_added)."""
from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import StateFilter
from aiogram.types import CallbackQuery, Message
from aiogram.utils.callback_answer import CallbackAnswer

from bot.callbacks import BillingEnt, BillingGo, BillingPick
from bot.flows.base import Flow, step_screen
from bot.flows.billing import current_enterprise, entry, may_buy, new_purchase, open_enterprise, submit_order
from bot.screens import billing as screens
from bot.screens.base import Screen
from bot.state.states import Billing
from services.billing import BillingRefused, service_quote
from services.catalog import Quote
from services.enterprises import Enterprise
from services.value_added import CONTRACT_PACK, SERVICES, SIGNING_REPORT, Availability, all_availability, availability


def offers(flow: Flow, ent: Enterprise) -> list[Availability]:
    return all_availability(ent.paid_edition(flow.app.clock.now()), verified=ent.verified)


def priced(flow: Flow, ent: Enterprise) -> Quote | None:
    """The chosen service priced now; None when incomplete or no longer available."""
    cart, now = flow.session.billing, flow.app.clock.now()
    if cart.kind != "service" or cart.service not in SERVICES:
        return None
    edition = ent.paid_edition(now)
    if not availability(cart.service, edition, verified=ent.verified).available:
        return None
    if cart.service in (CONTRACT_PACK, SIGNING_REPORT) and not cart.option:
        return None
    if cart.service not in (CONTRACT_PACK, SIGNING_REPORT) and not cart.years:
        return None
    try:
        return service_quote(flow.app.catalog, cart.service, cart.option, cart.years, edition)
    except BillingRefused:
        return None


@step_screen(Billing.services)
async def services_screen(flow: Flow) -> Screen | None:
    ent = await current_enterprise(flow)
    if ent is None:
        return None
    return screens.services(flow.tr, ent, flow.app.clock.now(), offers(flow, ent))


@step_screen(Billing.service_option)
async def option_screen(flow: Flow) -> Screen | None:
    ent, cart = await current_enterprise(flow), flow.session.billing
    if ent is None:
        return None
    if cart.service not in SERVICES or not availability(cart.service, ent.paid_edition(flow.app.clock.now()),
                                                        verified=ent.verified).available:
        return await services_screen(flow)
    return screens.service_options(flow.tr, ent, flow.app.catalog, cart.service)


@step_screen(Billing.service_confirm)
async def confirm_screen(flow: Flow) -> Screen | None:
    ent = await current_enterprise(flow)
    if ent is None:
        return None
    q = priced(flow, ent)
    if q is None:
        return await option_screen(flow)
    return screens.service_confirm(flow.tr, flow.app.catalog, ent, q, flow.app.clock.now(), flow.session.phone)


async def choose_service(event: Message | CallbackQuery, flow: Flow, ent: Enterprise, code: str, *,
                         notice: str | None = None, callback_answer: CallbackAnswer | None = None) -> None:
    """A service's 立即购买: its options, or why it cannot be bought (R6–R8) and what unlocks it."""
    a = availability(code, ent.paid_edition(flow.app.clock.now()), verified=ent.verified)
    if not a.available:
        why = flow.tr("value_added.locked_alert", name=screens.service_name(flow.tr, a.service),
                      reason=flow.tr(f"value_added.reason_{a.reason}"), unlock=flow.tr(f"value_added.how_{a.unlock}"))
        if callback_answer is not None:
            callback_answer.text, callback_answer.show_alert = why[:200], True
            await flow.go(event, Billing.services, notice=notice)
        else:
            await flow.go(event, Billing.services, notice="\n\n".join(filter(None, [notice, why])))
        return
    if not await may_buy(event, flow, ent, callback_answer, notice=notice):
        return
    cart = flow.session.billing
    cart.kind, cart.service, cart.option, cart.years = "service", a.service, None, None
    await flow.go(event, Billing.service_option, notice=notice)


@entry("svc")
async def enter(event: Message | CallbackQuery, flow: Flow, ent: Enterprise, action: str, *,
                notice: str | None = None, callback_answer: CallbackAnswer | None = None) -> None:
    """From 购买套餐: the service's own 立即购买 (action svc_<service>)."""
    code = action.removeprefix("svc_")
    new_purchase(flow, ent, "service")
    if code not in SERVICES:
        await flow.go(event, Billing.services, notice=notice)
        return
    await choose_service(event, flow, ent, code, notice=notice, callback_answer=callback_answer)


def router() -> Router:
    r = Router(name="value_added")
    in_flow = StateFilter(Billing.services, Billing.service_option, Billing.service_confirm)
    choosing = StateFilter(Billing.service_option, Billing.service_confirm)

    @r.callback_query(BillingEnt.filter(F.action == "services"))
    async def start(query: CallbackQuery, callback_data: BillingEnt, flow: Flow, callback_answer: CallbackAnswer) -> None:
        ent = await open_enterprise(query, flow, callback_data, callback_answer)
        if ent is None:
            return
        new_purchase(flow, ent, "service")  # every member may look; buying is checked on choosing
        await flow.go(query, Billing.services)

    @r.callback_query(BillingEnt.filter(F.action.startswith("svc_")))
    async def start_service(query: CallbackQuery, callback_data: BillingEnt, flow: Flow,
                            callback_answer: CallbackAnswer) -> None:
        ent = await open_enterprise(query, flow, callback_data, callback_answer)
        if ent is not None:
            await enter(query, flow, ent, callback_data.action, callback_answer=callback_answer)

    @r.callback_query(in_flow, BillingPick.filter(F.what == "service"))
    async def pick_service(query: CallbackQuery, callback_data: BillingPick, flow: Flow,
                           callback_answer: CallbackAnswer) -> None:
        ent = await current_enterprise(flow)
        if ent is None or callback_data.code not in SERVICES:
            callback_answer.text = flow.tr("error.stale")
            await flow.again(query)
            return
        await choose_service(query, flow, ent, callback_data.code, callback_answer=callback_answer)

    @r.callback_query(choosing, BillingPick.filter(F.what == "option"))
    async def pick_option(query: CallbackQuery, callback_data: BillingPick, flow: Flow,
                          callback_answer: CallbackAnswer) -> None:
        cart, cat = flow.session.billing, flow.app.catalog
        known = ((cart.service == CONTRACT_PACK and cat.pack(callback_data.code) is not None)
                 or (cart.service == SIGNING_REPORT and cat.report_pack(callback_data.code) is not None))
        if not known:
            callback_answer.text = flow.tr("error.stale")
            await flow.again(query)
            return
        cart.option = callback_data.code
        await flow.go(query, Billing.service_confirm)

    @r.callback_query(choosing, BillingPick.filter(F.what == "years"))
    async def pick_years(query: CallbackQuery, callback_data: BillingPick, flow: Flow,
                         callback_answer: CallbackAnswer) -> None:
        cart = flow.session.billing
        years = int(callback_data.code) if callback_data.code.isdigit() else 0
        if cart.service in (CONTRACT_PACK, SIGNING_REPORT, None) or years not in flow.app.catalog.years:
            callback_answer.text = flow.tr("error.stale")
            await flow.again(query)
            return
        cart.years = years
        await flow.go(query, Billing.service_confirm)

    @r.callback_query(StateFilter(Billing.service_confirm), BillingGo.filter(F.action == "submit"))
    async def submit(query: CallbackQuery, flow: Flow, callback_answer: CallbackAnswer) -> None:
        ent = await current_enterprise(flow)
        if ent is None:
            await flow.go(query, None)
            return
        if not await may_buy(query, flow, ent, callback_answer):
            return
        q = priced(flow, ent)
        if q is None:  # no longer available (R6–R8) or incomplete
            callback_answer.text = flow.tr("value_added.changed")
            await flow.go(query, Billing.services)
            return
        await submit_order(query, flow, ent, q)

    return r
