"""版本续费 renewal (R4, F7): 1–3 more years of the edition in effect, for the enterprise.

Delivery moves the expiry (from the current one, or from the payment when it has run out) and
adds the yearly quota. Paid in chat, or on the web for 专业版/旗舰版 and over the limit (R2)."""
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
from services.billing import BillingRefused, renewal_quote
from services.enterprises import FREE_EDITION, Enterprise


@step_screen(Billing.renew_years)
async def years_screen(flow: Flow) -> Screen | None:
    ent, now = await current_enterprise(flow), flow.app.clock.now()
    if ent is None:
        return None
    flow.session.billing.edition = ent.paid_edition(now)  # what is renewed is what the screen shows
    if ent.paid_edition(now) == FREE_EDITION:
        return screens.nothing_to_renew(flow.tr, ent)
    return screens.renew_years(flow.tr, ent, flow.app.catalog, now)


@step_screen(Billing.renew_confirm)
async def confirm_screen(flow: Flow) -> Screen | None:
    ent, cart, now = await current_enterprise(flow), flow.session.billing, flow.app.clock.now()
    if ent is None or cart.kind != "renewal" or not cart.years:
        return None
    if ent.paid_edition(now) != cart.edition:  # upgraded or run out meanwhile: choose again
        return await years_screen(flow)
    try:
        q = renewal_quote(flow.app.catalog, ent.paid_edition(now), cart.years)
    except BillingRefused:
        return screens.nothing_to_renew(flow.tr, ent)
    return screens.renew_confirm(flow.tr, flow.app.catalog, ent, q, now, flow.session.phone)


@entry("renew")
async def enter(event: Message | CallbackQuery, flow: Flow, ent: Enterprise, action: str, *,
                notice: str | None = None, callback_answer: CallbackAnswer | None = None) -> None:
    if not await may_buy(event, flow, ent, callback_answer, notice=notice):
        return
    new_purchase(flow, ent, "renewal").edition = ent.paid_edition(flow.app.clock.now())
    await flow.go(event, Billing.renew_years, notice=notice)


def router() -> Router:
    r = Router(name="renew")

    @r.callback_query(BillingEnt.filter(F.action == "renew"))
    async def start(query: CallbackQuery, callback_data: BillingEnt, flow: Flow, callback_answer: CallbackAnswer) -> None:
        ent = await open_enterprise(query, flow, callback_data, callback_answer)
        if ent is not None:
            await enter(query, flow, ent, "renew", callback_answer=callback_answer)

    # The confirmation shows the years again when the edition changed under it.
    @r.callback_query(StateFilter(Billing.renew_years, Billing.renew_confirm), BillingPick.filter(F.what == "years"))
    async def pick_years(query: CallbackQuery, callback_data: BillingPick, flow: Flow,
                         callback_answer: CallbackAnswer) -> None:
        ent = await current_enterprise(flow)
        years = int(callback_data.code) if callback_data.code.isdigit() else 0
        if ent is None or years not in flow.app.catalog.years:
            callback_answer.text = flow.tr("error.stale")
            await flow.again(query)
            return
        flow.session.billing.years = years
        await flow.go(query, Billing.renew_confirm)

    @r.callback_query(StateFilter(Billing.renew_confirm), BillingGo.filter(F.action == "submit"))
    async def submit(query: CallbackQuery, flow: Flow, callback_answer: CallbackAnswer) -> None:
        ent, cart, now = await current_enterprise(flow), flow.session.billing, flow.app.clock.now()
        if ent is None:
            await flow.go(query, None)
            return
        if not await may_buy(query, flow, ent, callback_answer):  # roles may have changed
            return
        try:
            if ent.paid_edition(now) != cart.edition:
                raise BillingRefused("changed")
            q = renewal_quote(flow.app.catalog, ent.paid_edition(now), cart.years or 0)
        except BillingRefused:
            callback_answer.text = flow.tr("renew.changed")
            await flow.go(query, Billing.renew_years)
            return
        await submit_order(query, flow, ent, q)

    return r
