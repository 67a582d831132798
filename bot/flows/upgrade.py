"""升级版本 upgrade (R4, R5, F8): only higher editions are offered; a downgrade never is.

From a bought edition the price is the annual difference for the days left (services.billing),
the edition changes at once and the expiry stays; the confirmation shows the calculation.
From 体验版 the enterprise buys its first edition for 1–3 years. In chat an upgrade to 专业版 or
旗舰版 ends on the web purchase link to copy, as the mini-program does (R4)."""
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
from services.billing import BillingRefused, UpgradeQuote, new_edition_quote, upgradable_to, upgrade_quote
from services.catalog import Quote
from services.enterprises import FREE_EDITION, Enterprise
from services.orders import UpgradeBasis


@step_screen(Billing.upgrade_edition)
async def edition_screen(flow: Flow) -> Screen | None:
    ent, now, cat = await current_enterprise(flow), flow.app.clock.now(), flow.app.catalog
    if ent is None:
        return None
    current = ent.paid_edition(now)
    flow.session.billing.from_edition = current  # what the offer below is an upgrade from
    return screens.upgrade_choose(flow.tr, ent, cat, now, upgradable_to(cat, current))


@step_screen(Billing.upgrade_years)
async def years_screen(flow: Flow) -> Screen | None:
    ent, cart = await current_enterprise(flow), flow.session.billing
    if ent is None or cart.kind != "edition" or not cart.edition:
        return None
    if ent.paid_edition(flow.app.clock.now()) != cart.from_edition:
        return await edition_screen(flow)
    return screens.upgrade_years(flow.tr, ent, flow.app.catalog, cart.edition)


@step_screen(Billing.upgrade_confirm)
async def confirm_screen(flow: Flow) -> Screen | None:
    ent = await current_enterprise(flow)
    if ent is None:
        return None
    try:
        priced = price(flow, ent)
    except BillingRefused:
        return await edition_screen(flow)  # the enterprise changed meanwhile: choose again
    if priced is None:
        return None
    now, phone = flow.app.clock.now(), flow.session.phone
    if isinstance(priced, Quote):  # from 体验版: a first edition
        return screens.new_edition_confirm(flow.tr, flow.app.catalog, ent, priced, now, phone)
    return screens.upgrade_confirm(flow.tr, flow.app.catalog, ent, priced, phone)


def price(flow: Flow, ent: Enterprise) -> UpgradeQuote | Quote | None:
    """The cart priced now: an UpgradeQuote, a Quote for a first edition, or None when incomplete.
    Raises BillingRefused when the enterprise is no longer on the edition the cart started from."""
    cart, now, cat = flow.session.billing, flow.app.clock.now(), flow.app.catalog
    if not cart.edition or cart.kind not in ("upgrade", "edition"):
        return None
    current = ent.paid_edition(now)
    if current != cart.from_edition:
        raise BillingRefused("changed")
    if cart.kind == "edition":
        return new_edition_quote(cat, cart.edition, cart.years) if cart.years else None
    return upgrade_quote(cat, current, cart.edition, ent.expires_at, now)


@entry("upgrade")
async def enter(event: Message | CallbackQuery, flow: Flow, ent: Enterprise, action: str, *,
                notice: str | None = None, callback_answer: CallbackAnswer | None = None) -> None:
    if not await may_buy(event, flow, ent, callback_answer, notice=notice):
        return
    new_purchase(flow, ent, "upgrade")
    await flow.go(event, Billing.upgrade_edition, notice=notice)


def router() -> Router:
    r = Router(name="upgrade")

    @r.callback_query(BillingEnt.filter(F.action == "upgrade"))
    async def start(query: CallbackQuery, callback_data: BillingEnt, flow: Flow, callback_answer: CallbackAnswer) -> None:
        ent = await open_enterprise(query, flow, callback_data, callback_answer)
        if ent is not None:
            await enter(query, flow, ent, "upgrade", callback_answer=callback_answer)

    # A step may show an earlier step's screen when the enterprise changed under it: the
    # earlier step's buttons are taken at the later steps too.
    choosing = StateFilter(Billing.upgrade_edition, Billing.upgrade_years, Billing.upgrade_confirm)

    @r.callback_query(choosing, BillingGo.filter(F.action == "downgrade"))
    async def downgrade(query: CallbackQuery, flow: Flow) -> None:
        await flow.go(query, Billing.upgrade_edition, notice=flow.tr("upgrade.refused_downgrade"))  # R5, asked

    @r.callback_query(choosing, BillingPick.filter(F.what == "edition"))
    async def pick_edition(query: CallbackQuery, callback_data: BillingPick, flow: Flow,
                           callback_answer: CallbackAnswer) -> None:
        ent, cat, now = await current_enterprise(flow), flow.app.catalog, flow.app.clock.now()
        target = cat.edition(callback_data.code)
        if ent is None or target is None or not target.sellable:
            callback_answer.text = flow.tr("error.stale")
            await flow.again(query)
            return
        current = ent.paid_edition(now)
        if target.rank <= cat.rank(current):  # a forged or old button: never a downgrade (R5)
            key = "upgrade.refused_same" if target.code == current else "upgrade.refused_downgrade"
            callback_answer.text = flow.tr(key)[:200]
            callback_answer.show_alert = True
            await flow.go(query, Billing.upgrade_edition)
            return
        cart = flow.session.billing
        cart.edition, cart.from_edition, cart.years = target.code, current, None
        if current == FREE_EDITION:
            cart.kind = "edition"
            await flow.go(query, Billing.upgrade_years)
        else:
            cart.kind = "upgrade"
            await flow.go(query, Billing.upgrade_confirm)

    @r.callback_query(StateFilter(Billing.upgrade_years, Billing.upgrade_confirm), BillingPick.filter(F.what == "years"))
    async def pick_years(query: CallbackQuery, callback_data: BillingPick, flow: Flow,
                         callback_answer: CallbackAnswer) -> None:
        years = int(callback_data.code) if callback_data.code.isdigit() else 0
        if years not in flow.app.catalog.years:
            callback_answer.text = flow.tr("error.stale")
            await flow.again(query)
            return
        flow.session.billing.years = years
        await flow.go(query, Billing.upgrade_confirm)

    @r.callback_query(StateFilter(Billing.upgrade_confirm), BillingGo.filter(F.action == "submit"))
    async def submit(query: CallbackQuery, flow: Flow, callback_answer: CallbackAnswer) -> None:
        ent = await current_enterprise(flow)
        if ent is None:
            await flow.go(query, None)
            return
        if not await may_buy(query, flow, ent, callback_answer):
            return
        try:
            priced = price(flow, ent)
        except BillingRefused:
            callback_answer.text = flow.tr("upgrade.changed")
            await flow.go(query, Billing.upgrade_edition)
            return
        if priced is None:
            await flow.go(query, Billing.upgrade_edition)
            return
        if isinstance(priced, Quote):
            await submit_order(query, flow, ent, priced)
            return
        basis = UpgradeBasis(from_edition=priced.from_edition, expires_at=priced.expires_at,
                             days_left=priced.days_left)
        await submit_order(query, flow, ent, priced.quote(), upgrade=basis)

    return r
