"""申请试用 (R14, R15, F10): enterprise → edition (only above the one in effect) → confirm the
edition, told there is one chance → contact name → contact phone, verified by SMS code (the
phone-code service of F3) → industry → yearly signing volume → review, where each answer can be
corrected → 提交: the 7-day trial opens at once and the lead is stored (services.trials).

Each answer is checked as it is given; a wrong one is said so and asked again, nothing lost."""
from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import StateFilter
from aiogram.fsm.state import State
from aiogram.types import CallbackQuery, Message
from aiogram.utils.callback_answer import CallbackAnswer

from bot.callbacks import BillingEnt, TrialPick
from bot.filters import When
from bot.flows.base import Flow, step_screen, unsafe_or
from bot.flows.billing import remember_chat, start_sign_in
from bot.flows.phone import code_refused, own_contact, request_code
from bot.screens import trial as screens
from bot.screens.base import Screen
from bot.state.states import TrialApp
from services.enterprises import Enterprise
from services.phones import InvalidPhone, mask_phone, normalize_phone
from services.text_input import TextRefused
from services.trials import TrialForm, TrialService, contact_name, trial_editions, trial_refusal

NONE = "-"
TEXT_STEPS = (TrialApp.name, TrialApp.phone, TrialApp.code)


def trials(flow: Flow) -> TrialService:
    return flow.app.trials


async def form_enterprise(flow: Flow) -> Enterprise | None:
    form, phone = flow.session.trial, flow.session.phone
    ent = await flow.app.enterprises.get(form.enterprise_id) if form.enterprise_id else None
    return ent if ent is not None and phone and phone in ent.members else None


def refusal_of(flow: Flow, ent: Enterprise, edition: str | None) -> str | None:
    role = ent.role_of(flow.session.phone)
    reason = trial_refusal(ent, edition, flow.app.catalog, flow.app.clock.now())
    if reason is None and (role is None or not role.can_buy):
        return "no_rights"
    return reason


def next_step(form: TrialForm) -> State:
    """The first answer still missing, or the review (where a correction also returns)."""
    if form.reviewing and form.complete():
        return TrialApp.review
    if not form.contact_name:
        return TrialApp.name
    if not form.contact_phone:
        return TrialApp.phone
    if not form.industry:
        return TrialApp.industry
    if not form.volume:
        return TrialApp.volume
    return TrialApp.review


# --- steps -----------------------------------------------------------------------------------------


@step_screen(TrialApp.enterprise)
async def enterprise_screen(flow: Flow) -> Screen | None:
    phone = flow.session.phone
    if not phone:
        return None
    joined = await flow.app.enterprises.for_phone(phone)
    verified = [e for e in joined if e.verified]
    if not verified:
        return screens.no_enterprise(flow.tr, phone, [e for e in joined if not e.verified])
    return screens.choose_enterprise(flow.tr, verified)


@step_screen(TrialApp.edition)
async def edition_screen(flow: Flow) -> Screen | None:
    ent = await form_enterprise(flow)
    if ent is None:
        return None
    reason = refusal_of(flow, ent, None)
    if reason is not None:
        return screens.refused(flow.tr, ent, reason)
    now, cat = flow.app.clock.now(), flow.app.catalog
    return screens.editions(flow.tr, ent, trial_editions(ent, cat, now), ent.paid_edition(now), cat.trial_days)


@step_screen(TrialApp.confirm)
async def confirm_screen(flow: Flow) -> Screen | None:
    ent, form = await form_enterprise(flow), flow.session.trial
    if ent is None or not form.edition:
        return None
    if refusal_of(flow, ent, form.edition) is not None:
        return await edition_screen(flow)
    return screens.confirm(flow.tr, ent, form.edition, flow.app.catalog.trial_days)


async def _form_ready(flow: Flow) -> bool:
    form = flow.session.trial
    return bool(form.confirmed and form.edition and await form_enterprise(flow))


@step_screen(TrialApp.name)
async def name_screen(flow: Flow) -> Screen | None:
    return screens.ask_name(flow.tr, flow.session.trial) if await _form_ready(flow) else None


@step_screen(TrialApp.phone)
async def phone_screen(flow: Flow) -> Screen | None:
    return screens.ask_phone(flow.tr, flow.session.trial) if await _form_ready(flow) else None


@step_screen(TrialApp.code)
async def code_screen(flow: Flow) -> Screen | None:
    pending = flow.session.trial.phone_pending
    return screens.ask_code(flow.tr, pending, flow.session.code_state) if pending and await _form_ready(flow) else None


@step_screen(TrialApp.industry)
async def industry_screen(flow: Flow) -> Screen | None:
    if not await _form_ready(flow):
        return None
    return screens.choose_industry(flow.tr, flow.app.catalog, flow.session.trial)


@step_screen(TrialApp.volume)
async def volume_screen(flow: Flow) -> Screen | None:
    if not await _form_ready(flow):
        return None
    return screens.choose_volume(flow.tr, flow.app.catalog, flow.session.trial)


@step_screen(TrialApp.review)
async def review_screen(flow: Flow) -> Screen | None:
    ent, form = await form_enterprise(flow), flow.session.trial
    if ent is None or not form.complete():
        return None
    return screens.review(flow.tr, ent, form, flow.app.catalog.trial_days)


@step_screen(TrialApp.done)
async def done_screen(flow: Flow) -> Screen | None:
    ent = await form_enterprise(flow)
    if ent is None or ent.trial is None:
        return None
    return screens.done(flow.tr, ent, flow.app.clock.now())


# --- the router ------------------------------------------------------------------------------------


def router() -> Router:
    r = Router(name="trial")
    filling = StateFilter(TrialApp.name, TrialApp.phone, TrialApp.code, TrialApp.industry, TrialApp.volume,
                          TrialApp.review)

    # "trial", or "trial_<edition>" from the edition details (版本详情页: the edition chosen there).
    @r.callback_query(BillingEnt.filter(F.action.startswith("trial")))
    async def start(query: CallbackQuery, callback_data: BillingEnt, flow: Flow, callback_answer: CallbackAnswer) -> None:
        if not flow.session.phone:  # who is applying is known from the verified phone
            await start_sign_in(query, flow, callback_data)
            return
        await remember_chat(flow)
        wanted = wanted_edition(callback_data.action)
        if callback_data.ent == NONE:
            joined = [e for e in await flow.app.enterprises.for_phone(flow.session.phone) if e.verified]
            if len(joined) != 1:
                flow.session.trial = TrialForm(edition=wanted)
                await flow.go(query, TrialApp.enterprise)
                return
            callback_data = BillingEnt(action="trial", ent=joined[0].id)
        await choose(query, flow, callback_data.ent, callback_answer, wanted)

    @r.callback_query(StateFilter(TrialApp.enterprise), TrialPick.filter(F.field == "enterprise"))
    async def pick_enterprise(query: CallbackQuery, callback_data: TrialPick, flow: Flow,
                              callback_answer: CallbackAnswer) -> None:
        await choose(query, flow, callback_data.value, callback_answer, flow.session.trial.edition)

    @r.callback_query(StateFilter(TrialApp.edition, TrialApp.confirm), TrialPick.filter(F.field == "edition"))
    async def pick_edition(query: CallbackQuery, callback_data: TrialPick, flow: Flow,
                           callback_answer: CallbackAnswer) -> None:
        ent = await form_enterprise(flow)
        if ent is None:
            await flow.go(query, None)
            return
        reason = refusal_of(flow, ent, callback_data.value)
        if reason is not None:
            callback_answer.text = flow.tr(f"trial.alert_{reason}" if reason in ("not_higher", "unknown_edition")
                                           else "trial.alert_refused")
            callback_answer.show_alert = True
            await flow.go(query, TrialApp.edition)
            return
        flow.session.trial.edition, flow.session.trial.confirmed = callback_data.value, False
        await flow.go(query, TrialApp.confirm)

    @r.callback_query(StateFilter(TrialApp.confirm), TrialPick.filter(F.field == "confirm"))
    async def confirm(query: CallbackQuery, callback_data: TrialPick, flow: Flow, callback_answer: CallbackAnswer) -> None:
        form = flow.session.trial
        if callback_data.value != form.edition:
            callback_answer.text = flow.tr("error.stale")
            await flow.again(query)
            return
        form.confirmed = True
        await flow.go(query, next_step(form))

    # --- the form: typed answers --------------------------------------------------------------

    @r.message(StateFilter(TrialApp.name), When(F.text))
    async def typed_name(message: Message, flow: Flow) -> None:
        try:
            name = contact_name(message.text or "")
        except TextRefused as refused:
            await flow.again(message, flow.tr(unsafe_or(refused, "trial.name_invalid")))
            return
        flow.session.trial.contact_name = name
        await flow.go(message, next_step(flow.session.trial))

    @r.message(StateFilter(TrialApp.phone), When(F.contact))
    async def shared_phone(message: Message, flow: Flow) -> None:
        assert message.contact is not None  # the filter above
        # A colleague's card may be the contact; only the sender's own counts as proof of ownership.
        await take_phone(message, flow, message.contact.phone_number, proven=own_contact(message))

    @r.message(StateFilter(TrialApp.phone), When(F.text))
    async def typed_phone(message: Message, flow: Flow) -> None:
        await take_phone(message, flow, message.text or "")

    @r.message(StateFilter(TrialApp.code), When(F.text))
    async def typed_code(message: Message, flow: Flow) -> None:
        form, tr = flow.session.trial, flow.tr
        result = await flow.app.codes.verify(flow.user_id, form.phone_pending or "", message.text or "")
        if result.ok:
            form.contact_phone, form.phone_pending = form.phone_pending, None
            await flow.go(message, next_step(form), notice=tr("phone.verified", phone=mask_phone(form.contact_phone)))
        else:
            await code_refused(message, flow, result)

    @r.message(StateFilter(*TEXT_STEPS))
    async def not_text(message: Message, flow: Flow) -> None:
        await flow.again(message, flow.tr("error.text_only"))

    @r.callback_query(StateFilter(TrialApp.code), TrialPick.filter(F.field == "resend"))
    async def resend(query: CallbackQuery, flow: Flow) -> None:
        await send_code(query, flow, flow.session.trial.phone_pending or "")

    @r.callback_query(StateFilter(TrialApp.code), TrialPick.filter(F.field == "change"))
    async def change(query: CallbackQuery, flow: Flow) -> None:
        flow.session.trial.phone_pending = None
        await flow.go(query, TrialApp.phone)

    # --- the form: choices, review, corrections, 提交 ---------------------------------------------

    @r.callback_query(StateFilter(TrialApp.industry), TrialPick.filter(F.field == "industry"))
    async def pick_industry(query: CallbackQuery, callback_data: TrialPick, flow: Flow,
                            callback_answer: CallbackAnswer) -> None:
        if callback_data.value not in flow.app.catalog.trial_industries:
            callback_answer.text = flow.tr("error.stale")
            await flow.again(query)
            return
        flow.session.trial.industry = callback_data.value
        await flow.go(query, next_step(flow.session.trial))

    @r.callback_query(StateFilter(TrialApp.volume), TrialPick.filter(F.field == "volume"))
    async def pick_volume(query: CallbackQuery, callback_data: TrialPick, flow: Flow,
                          callback_answer: CallbackAnswer) -> None:
        if callback_data.value not in flow.app.catalog.trial_volumes:
            callback_answer.text = flow.tr("error.stale")
            await flow.again(query)
            return
        flow.session.trial.volume = callback_data.value
        await flow.go(query, next_step(flow.session.trial))

    @r.callback_query(filling, TrialPick.filter(F.field == "review"))
    async def back_to_review(query: CallbackQuery, flow: Flow) -> None:
        flow.session.trial.phone_pending = None
        await flow.go(query, next_step(flow.session.trial))

    @r.callback_query(StateFilter(TrialApp.review), TrialPick.filter(F.field == "edit"))
    async def edit(query: CallbackQuery, callback_data: TrialPick, flow: Flow, callback_answer: CallbackAnswer) -> None:
        steps = {"name": TrialApp.name, "phone": TrialApp.phone, "industry": TrialApp.industry,
                 "volume": TrialApp.volume}
        step = steps.get(callback_data.value)
        if step is None:
            callback_answer.text = flow.tr("error.stale")
            await flow.again(query)
            return
        flow.session.trial.reviewing = True
        await flow.go(query, step)

    @r.callback_query(StateFilter(TrialApp.review), TrialPick.filter(F.field == "submit"))
    async def submit(query: CallbackQuery, flow: Flow, callback_answer: CallbackAnswer) -> None:
        form = flow.session.trial
        outcome = await trials(flow).start(form, user_id=flow.user_id, applicant_phone=flow.session.phone)
        if outcome.status == "started":
            await flow.go(query, TrialApp.done)
            return
        if outcome.reason == "incomplete":
            await flow.go(query, next_step(form))
            return
        callback_answer.text = flow.tr("trial.alert_refused")
        await flow.go(query, TrialApp.edition)  # shows why (R14)

    return r


def wanted_edition(action: str) -> str | None:
    """The edition a trial button names ("trial_professional"), if any."""
    return action.removeprefix("trial_") if action.startswith("trial_") else None


async def choose(query: CallbackQuery, flow: Flow, ent_id: str, callback_answer: CallbackAnswer,
                 wanted: str | None = None) -> None:
    """The enterprise is chosen: the edition named before, when it may be tried, goes straight
    to its confirmation (the one chance); otherwise the editions offered, or why none is."""
    ent = await flow.app.enterprises.get(ent_id)
    if ent is None or flow.session.phone not in ent.members:
        callback_answer.text = flow.tr("billing.not_member")
        callback_answer.show_alert = True
        await flow.again(query)
        return
    flow.session.trial = TrialForm(enterprise_id=ent.id)
    reason = refusal_of(flow, ent, wanted) if wanted is not None else None
    if wanted is not None and reason is None:
        flow.session.trial.edition = wanted
        await flow.go(query, TrialApp.confirm)
        return
    # Not that edition (the screen says why when nothing can be tried at all).
    notice = flow.tr("trial.alert_not_higher") if reason == "not_higher" else None
    await flow.go(query, TrialApp.edition, notice=notice)


async def take_phone(message: Message, flow: Flow, raw: str, *, proven: bool = False) -> None:
    try:
        phone = normalize_phone(raw)
    except InvalidPhone:
        await flow.again(message, flow.tr("phone.invalid"))
        return
    await send_code(message, flow, phone, proven=proven)


async def send_code(event: Message | CallbackQuery, flow: Flow, phone: str, *, proven: bool = False) -> None:
    """The contact phone is verified by SMS code, with the limits of services.codes (F3)."""
    def remember(pending: str) -> None:
        flow.session.trial.phone_pending = pending

    await request_code(event, flow, phone, number_step=TrialApp.phone, code_step=TrialApp.code, remember=remember,
                       proven=proven)
