"""申请试用 screens (R14, R15, F10). Texts: config/locales/trial.*.toml."""
from __future__ import annotations

from datetime import datetime

from aiogram.types import InlineKeyboardButton

from bot.callbacks import BillingEnt, InfoPage, TrialPick
from bot.screens import code_text, edition_name, local_time, nav_row, verify_guide_row
from bot.screens.base import Screen, button, inline
from bot.screens.billing import whom_to_ask
from config.texts import Translator
from services.catalog import Catalog, Edition
from services.enterprises import Enterprise
from services.phones import mask_phone
from services.trials import TrialForm


def industry_name(tr: Translator, code: str) -> str:
    return tr(f"trial.industry_{code}")


def volume_name(tr: Translator, code: str) -> str:
    return tr(f"trial.volume_{code}")


def cancel_row(tr: Translator) -> list[InlineKeyboardButton]:
    return nav_row(tr)


def choose_enterprise(tr: Translator, enterprises: list[Enterprise]) -> Screen:
    rows = [[button(e.name, TrialPick(field="enterprise", value=e.id))] for e in enterprises]
    return Screen(tr("trial.choose_enterprise"), inline(*rows, nav_row(tr)))


def no_enterprise(tr: Translator, phone: str, unverified: list[Enterprise]) -> Screen:
    text = tr("trial.no_enterprise", phone=mask_phone(phone))
    if unverified:
        text += "\n" + tr("trial.unverified_names", names="、".join(e.name for e in unverified))
    return Screen(text, inline([button(tr("billing.btn_about_enterprise"), InfoPage(page="editions"))],
                               verify_guide_row(tr), nav_row(tr)))


def refused(tr: Translator, ent: Enterprise, reason: str) -> Screen:
    """R14: why this enterprise cannot apply (unverified, its one chance used, on the highest
    edition, or the applicant has no billing rights)."""
    if reason == "used" and ent.trial is not None:
        text = tr("trial.refused_used_when", name=ent.name, edition=edition_name(tr, ent.trial.edition),
                  at=local_time(ent.trial.started_at))
    elif reason == "no_rights":
        text = tr("trial.refused_no_rights", name=ent.name) + "\n" + whom_to_ask(tr, ent)
    else:
        text = tr(f"trial.refused_{reason}", name=ent.name)
    rows = [[button(tr("billing.back_to_enterprise"), BillingEnt(action="view", ent=ent.id))]]
    if reason in ("used", "not_higher"):
        rows.insert(0, [button(tr("billing.btn_upgrade"), BillingEnt(action="upgrade", ent=ent.id))])
    if reason == "not_verified":
        rows.insert(0, verify_guide_row(tr))
    return Screen(text, inline(*rows, nav_row(tr)))


def editions(tr: Translator, ent: Enterprise, offered: list[Edition], current: str, days: int) -> Screen:
    rows = [[button(tr("trial.edition_button", name=edition_name(tr, e.code), days=days),
                    TrialPick(field="edition", value=e.code))] for e in offered]
    text = tr("trial.editions_title", name=ent.name, edition=edition_name(tr, current), days=days)
    return Screen(text, inline(*rows, nav_row(tr)))


def confirm(tr: Translator, ent: Enterprise, edition: str, days: int) -> Screen:
    """The user confirms the edition, told there is only one chance (R14)."""
    text = tr("trial.confirm", name=ent.name, edition=edition_name(tr, edition), days=days)
    markup = inline(
        [button(tr("trial.confirm_button", edition=edition_name(tr, edition)), TrialPick(field="confirm", value=edition))],
        [button(tr("trial.other_edition"), BillingEnt(action="trial", ent=ent.id))],
        nav_row(tr),
    )
    return Screen(text, markup)


def _progress(tr: Translator, step: int) -> str:
    return tr("trial.progress", step=step, steps=4)


def ask_name(tr: Translator, form: TrialForm) -> Screen:
    text = _progress(tr, 1) + "\n" + tr("trial.name_prompt")
    if form.contact_name:
        text += "\n" + tr("trial.current_value", value=form.contact_name)
    return Screen(text, inline(*_back_to_review(tr, form), nav_row(tr)))


def ask_phone(tr: Translator, form: TrialForm) -> Screen:
    text = _progress(tr, 2) + "\n" + tr("trial.phone_prompt")
    if form.contact_phone:
        text += "\n" + tr("trial.current_value", value=mask_phone(form.contact_phone))
    return Screen(text, inline(*_back_to_review(tr, form), nav_row(tr)))


def ask_code(tr: Translator, phone: str, state: str | None = None) -> Screen:
    markup = inline(
        [button(tr("btn.resend"), TrialPick(field="resend"))],
        [button(tr("btn.change_phone"), TrialPick(field="change"))],
        nav_row(tr),
    )
    return Screen(_progress(tr, 2) + "\n" + code_text(tr, phone, state), markup)


def choose_industry(tr: Translator, cat: Catalog, form: TrialForm) -> Screen:
    codes = cat.trial_industries
    rows = [[button(("✓ " if c == form.industry else "") + industry_name(tr, c), TrialPick(field="industry", value=c))
             for c in codes[i:i + 2]] for i in range(0, len(codes), 2)]
    return Screen(_progress(tr, 3) + "\n" + tr("trial.industry_prompt"), inline(*rows, *_back_to_review(tr, form), nav_row(tr)))


def choose_volume(tr: Translator, cat: Catalog, form: TrialForm) -> Screen:
    rows = [[button(("✓ " if c == form.volume else "") + volume_name(tr, c), TrialPick(field="volume", value=c))]
            for c in cat.trial_volumes]
    return Screen(_progress(tr, 4) + "\n" + tr("trial.volume_prompt"), inline(*rows, *_back_to_review(tr, form), nav_row(tr)))


def _back_to_review(tr: Translator, form: TrialForm) -> list[list[InlineKeyboardButton]]:
    return [[button(tr("trial.back_to_review"), TrialPick(field="review"))]] if form.reviewing and form.complete() else []


def review(tr: Translator, ent: Enterprise, form: TrialForm, days: int) -> Screen:
    """Everything entered, each correctable, then 提交 (R15)."""
    text = tr(
        "trial.review", name=ent.name, edition=edition_name(tr, form.edition or ""), days=days,
        contact=form.contact_name, phone=mask_phone(form.contact_phone or ""),
        industry=industry_name(tr, form.industry or ""), volume=volume_name(tr, form.volume or ""),
    )
    markup = inline(
        [button(tr("trial.submit"), TrialPick(field="submit"))],
        [button(tr("trial.edit_name"), TrialPick(field="edit", value="name")),
         button(tr("trial.edit_phone"), TrialPick(field="edit", value="phone"))],
        [button(tr("trial.edit_industry"), TrialPick(field="edit", value="industry")),
         button(tr("trial.edit_volume"), TrialPick(field="edit", value="volume"))],
        nav_row(tr),
    )
    return Screen(text, markup)


def done(tr: Translator, ent: Enterprise, now: datetime) -> Screen:
    trial = ent.trial
    assert trial is not None
    text = tr("trial.done", name=ent.name, edition=edition_name(tr, trial.edition), until=local_time(trial.ends_at),
              back=edition_name(tr, ent.paid_edition(trial.ends_at)))
    markup = inline(
        [button(tr("billing.back_to_enterprise"), BillingEnt(action="view", ent=ent.id))],
        [button(tr("billing.btn_upgrade"), BillingEnt(action="upgrade", ent=ent.id))],
        nav_row(tr),
    )
    return Screen(text, markup)
