"""费用管理 screens (F1 overview, F7 renew, F8 upgrade, F9 value-added services, reminders).

Pure functions of data → Screen; texts from config/locales/billing|renew|upgrade|value_added.*.toml.
"""
from __future__ import annotations

from datetime import datetime

from aiogram.types import InlineKeyboardButton

from bot.callbacks import BillingEnt, BillingGo, BillingPick, InfoPage, Nav
from bot.screens import (
    chat_payment_rule,
    code_text,
    edition_name,
    local_date,
    local_time,
    nav_row,
    pack_name,
    status_label,
    verify_guide_row,
)
from bot.screens.base import Screen, button, inline, link
from config.texts import Translator
from services.billing import UpgradeQuote, days_left
from services.catalog import Catalog, Edition, Quote, QuoteLine, format_fen
from services.clock import add_years
from services.enterprises import FREE_EDITION, Enterprise, Role
from services.orders import Order, OrderKind
from services.phones import mask_phone
from services.scheduler import Reminder
from services.value_added import CONTRACT_PACK, SIGNING_REPORT, Availability

NONE = "-"  # BillingEnt.ent when no enterprise is chosen


def service_name(tr: Translator, code: str) -> str:
    return tr(f"value_added.name_{code}")


def role_name(tr: Translator, role: Role | None) -> str:
    return tr(f"billing.role_{role.value}") if role else tr("billing.role_none")


# --- order lines and labels (also used by 我的订单 and the payment screens) ---------------------


def line_label(tr: Translator, line: QuoteLine) -> str:
    if line.kind == "edition":
        return tr("buy.line_edition", name=edition_name(tr, line.code), years=line.quantity)
    if line.kind == "pack":
        return pack_name(tr, line.code)
    if line.kind == "upgrade":
        return tr("upgrade.line", name=edition_name(tr, line.code), days=line.quantity)
    if line.kind == "report":
        return tr("value_added.report_line", reports=f"{line.units:,}")
    if line.kind == "service":
        return tr("value_added.service_line", name=service_name(tr, line.code), years=line.quantity)
    return line.code


def order_label(tr: Translator, order: Order, *, short: bool = False) -> str:
    """What an order buys, in a few words (我的订单 rows, invoices, the delivery screen); `short`
    names an add-on pack briefly (the invoice title's 32 characters)."""
    if order.kind is OrderKind.RENEWAL:
        return tr("billing.label_renewal", name=edition_name(tr, order.edition), years=order.years)
    if order.kind is OrderKind.UPGRADE:
        source = order.upgrade.from_edition if order.upgrade else FREE_EDITION
        return tr("billing.label_upgrade", source=edition_name(tr, source), name=edition_name(tr, order.edition))
    if order.kind is OrderKind.SERVICE:
        return "、".join(line_label(tr, line) for line in order.lines)
    label = tr("buy.line_edition", name=edition_name(tr, order.edition), years=order.years)
    if not order.pack:
        return label
    pack = tr(f"pack_short.{order.pack}") if short and tr.has(f"pack_short.{order.pack}") else pack_name(tr, order.pack)
    return tr("buy.label_with_pack", label=label, pack=pack)


def order_row(tr: Translator, order: Order) -> str:
    return tr("billing.order_row", label=order_label(tr, order), total=format_fen(order.total_fen),
              status=status_label(tr, order))


# --- the overview (首页) and the enterprise's billing screen ------------------------------------


def services_text(tr: Translator, ent: Enterprise, now: datetime) -> str:
    parts = []
    if ent.services.get(CONTRACT_PACK):
        parts.append(tr("billing.ov_packs", contracts=f"{ent.services[CONTRACT_PACK]:,}"))
    if ent.services.get(SIGNING_REPORT):
        parts.append(tr("billing.ov_reports", reports=f"{ent.services[SIGNING_REPORT]:,}"))
    for code, until in sorted(ent.active_subscriptions(now).items()):
        parts.append(tr("billing.ov_subscription", name=service_name(tr, code), until=local_date(until, tr)))
    return "；".join(parts) if tr.lang == "zh" else "; ".join(parts)


def overview(tr: Translator, ent: Enterprise, now: datetime, warn_days: int = 30) -> str:
    """One enterprise on 首页: edition in effect, expiry, contracts left, services, trial (F1)."""
    if not ent.verified:
        return tr("home.overview_unverified", name=ent.name)
    paid = ent.paid_edition(now)
    effective = ent.edition_in_effect(now)
    trial = ent.running_trial(now)
    lines = [tr("billing.ov_name", name=ent.name)]
    if trial is not None and effective == trial.edition:
        lines.append(tr("billing.ov_edition_trial", edition=edition_name(tr, effective)))
    else:
        lines.append(tr("billing.ov_edition", edition=edition_name(tr, effective)))
    lines.append(tr("billing.ov_expiry", expiry=local_date(ent.paid_expiry(now), tr)))
    lines.append(tr("billing.ov_contracts", contracts=f"{ent.contracts_left:,}"))
    bought = services_text(tr, ent, now)
    lines.append(tr("billing.ov_services", services=bought or tr("billing.ov_services_none")))
    if trial is not None:
        lines.append(tr("billing.ov_trial", edition=edition_name(tr, trial.edition), until=local_time(trial.ends_at),
                        back=edition_name(tr, ent.paid_edition(trial.ends_at))))
    elif paid != FREE_EDITION and days_left(ent.expires_at, now) <= warn_days:
        lines.append(tr("billing.ov_expiring", days=days_left(ent.expires_at, now)))
    return "\n".join(lines)


def whom_to_ask(tr: Translator, ent: Enterprise) -> str:
    people = [tr("billing.ask_person", role=role_name(tr, ent.members[p]), phone=mask_phone(p)) for p in ent.buyers()]
    return tr("billing.ask", people="、".join(people)) if people else tr("billing.ask_nobody")


def enterprise(tr: Translator, ent: Enterprise, cat: Catalog, now: datetime, phone: str | None) -> Screen:
    """费用管理 of one enterprise: its overview, the member's role, and what can be bought."""
    role = ent.role_of(phone)
    warn = max(cat.edition_reminder_days, default=0)
    lines = [tr("billing.title"), "", overview(tr, ent, now, warn), "", tr("billing.your_role", role=role_name(tr, role))]
    if not ent.verified:
        lines.append(tr("billing.unverified_note"))
    elif role is None or not role.can_buy:
        lines.append(whom_to_ask(tr, ent))
    rows = [
        [button(tr("billing.btn_renew"), BillingEnt(action="renew", ent=ent.id)),
         button(tr("billing.btn_upgrade"), BillingEnt(action="upgrade", ent=ent.id))],
        [button(tr("billing.btn_value_added"), BillingEnt(action="services", ent=ent.id))],
        [button(tr("billing.btn_trial"), BillingEnt(action="trial", ent=ent.id))],
    ]
    if not ent.verified:
        rows.append(verify_guide_row(tr))
    return Screen("\n".join(lines), inline(*rows, nav_row(tr)))


def ask_phone(tr: Translator) -> Screen:
    """Who is asking: the member's phone (typed, or their own contact shared)."""
    return Screen(tr("billing.phone_prompt"), inline(nav_row(tr)))


def ask_code(tr: Translator, phone: str, state: str | None = None) -> Screen:
    markup = inline(
        [button(tr("btn.resend"), BillingGo(action="resend"))],
        [button(tr("btn.change_phone"), BillingGo(action="change"))],
        nav_row(tr),
    )
    return Screen(code_text(tr, phone, state), markup)


def pick_enterprise(tr: Translator, action: str, enterprises: list[Enterprise], phone: str) -> Screen:
    """From 购买套餐: which of the phone's enterprises 版本续费 / 版本升级 / a service is for."""
    rows = [[button(e.name, BillingEnt(action=action, ent=e.id))] for e in enterprises]
    return Screen(tr("billing.pick_enterprise", phone=mask_phone(phone)),
                  inline(*rows, [button(tr("btn.buy_plan"), Nav(to="catalog"))], nav_row(tr)))


def no_enterprise(tr: Translator, phone: str) -> Screen:
    markup = inline(
        [button(tr("billing.btn_about_enterprise"), InfoPage(page="editions"))],
        verify_guide_row(tr),
        [button(tr("btn.buy_plan"), Nav(to="catalog"))],
        nav_row(tr),
    )
    return Screen(tr("billing.no_enterprise", phone=mask_phone(phone)), markup)


def refused(tr: Translator, ent: Enterprise, text: str, *, extra: list[list[InlineKeyboardButton]] | None = None) -> Screen:
    """A purchase the enterprise cannot make now: why, and the way back to its billing screen."""
    rows = list(extra or [])
    rows.append([button(tr("billing.back_to_enterprise"), BillingEnt(action="view", ent=ent.id))])
    return Screen(text, inline(*rows, nav_row(tr)))


def back_row(tr: Translator, ent: Enterprise) -> list[InlineKeyboardButton]:
    return [button(tr("billing.back_to_enterprise"), BillingEnt(action="view", ent=ent.id))]


# --- 版本续费 renewal (F7) ----------------------------------------------------------------------


def renewal_end(ent: Enterprise, years: int, now: datetime) -> datetime:
    start = ent.expires_at if ent.expires_at and ent.expires_at > now else now
    return add_years(start, years)


def renew_years(tr: Translator, ent: Enterprise, cat: Catalog, now: datetime) -> Screen:
    edition = cat.edition(ent.paid_edition(now))
    assert edition is not None
    rows = [
        [button(tr("renew.years_button", years=y, price=format_fen(edition.price_per_year_fen * y),
                   until=local_date(renewal_end(ent, y, now), tr)), BillingPick(what="years", code=str(y)))]
        for y in cat.years
    ]
    text = tr("renew.title", name=ent.name, edition=edition_name(tr, edition.code),
              expiry=local_date(ent.expires_at, tr), contracts=f"{edition.contracts_per_year:,}")
    return Screen(text, inline(*rows, back_row(tr, ent), nav_row(tr)))


def pay_where(tr: Translator, cat: Catalog, q: Quote, web_key: str = "billing.pay_where_web") -> str:
    """Where the order is paid; off the chat, why (the one reason, or the per-order limit)."""
    if q.chat_payable:
        return tr("billing.pay_where_chat")
    edition = cat.edition(q.edition) if q.kind != "service" else None  # a service names it for the record only
    reason = (chat_payment_rule(tr, cat) if edition is not None and not edition.chat_payable
              else tr("billing.web_why_limit"))
    return tr(web_key, reason=reason, name=edition_name(tr, q.edition or ""))


def renew_confirm(tr: Translator, cat: Catalog, ent: Enterprise, q: Quote, now: datetime, phone: str | None) -> Screen:
    lines = [
        tr("renew.confirm_title"),
        tr("billing.confirm_enterprise", name=ent.name),
        tr("buy.confirm_line", label=line_label(tr, q.lines[0]), amount=format_fen(q.total_fen)),
        tr("renew.confirm_expiry", before=local_date(ent.expires_at, tr),
           after=local_date(renewal_end(ent, q.years, now), tr)),
        tr("buy.confirm_contracts", contracts=f"{q.contracts:,}"),
        tr("buy.confirm_total", total=format_fen(q.total_fen)),
    ]
    if phone:
        lines.append(tr("buy.confirm_phone", phone=mask_phone(phone)))
    lines += ["", pay_where(tr, cat, q), tr("buy.confirm_note")]
    markup = inline(
        [button(tr("btn.submit"), BillingGo(action="submit"))],
        [button(tr("renew.other_years"), BillingEnt(action="renew", ent=ent.id))],
        back_row(tr, ent),
        nav_row(tr),
    )
    return Screen("\n".join(lines), markup)


def nothing_to_renew(tr: Translator, ent: Enterprise) -> Screen:
    extra = [[button(tr("billing.btn_upgrade"), BillingEnt(action="upgrade", ent=ent.id))]]
    return refused(tr, ent, tr("renew.nothing", name=ent.name), extra=extra)


# --- 升级版本 upgrade (F8) ---------------------------------------------------------------------


def upgrade_choose(tr: Translator, ent: Enterprise, cat: Catalog, now: datetime, targets: list[Edition]) -> Screen:
    current = ent.paid_edition(now)
    free = current == FREE_EDITION
    lines = [tr("upgrade.title", name=ent.name, edition=edition_name(tr, current))]
    if not targets:
        lines.append(tr("upgrade.highest"))
    else:
        lines.append(tr("upgrade.choose_free" if free else "upgrade.choose", expiry=local_date(ent.expires_at, tr),
                        days=days_left(ent.expires_at, now)))
    lines.append(tr("upgrade.no_downgrade"))
    rows = [
        [button(tr("upgrade.edition_button", name=edition_name(tr, e.code), price=format_fen(e.price_per_year_fen),
                   contracts=f"{e.contracts_per_year:,}"), BillingPick(what="edition", code=e.code))]
        for e in targets
    ]
    rows.append([button(tr("upgrade.downgrade_button"), BillingGo(action="downgrade"))])
    return Screen("\n".join(lines), inline(*rows, back_row(tr, ent), nav_row(tr)))


def upgrade_years(tr: Translator, ent: Enterprise, cat: Catalog, edition_code: str) -> Screen:
    """From 体验版: the new edition is bought for 1–3 years at the list price."""
    ed = cat.edition(edition_code)
    assert ed is not None
    rows = [
        [button(tr("buy.years_button", years=y, price=format_fen(ed.price_per_year_fen * y)),
                BillingPick(what="years", code=str(y)))]
        for y in cat.years
    ]
    text = tr("upgrade.years_title", name=ent.name, edition=edition_name(tr, ed.code),
              contracts=f"{ed.contracts_per_year:,}")
    return Screen(text, inline(*rows, [button(tr("upgrade.other_edition"), BillingEnt(action="upgrade", ent=ent.id))],
                               nav_row(tr)))


def upgrade_calculation(tr: Translator, u: UpgradeQuote) -> list[str]:
    """The calculation, figure by figure (R4, R5): the confirmation shows how the price came."""
    return [
        tr("upgrade.calc_days", days=u.days_left, expiry=local_date(u.expires_at, tr)),
        tr("upgrade.calc_price", to_price=format_fen(u.to_price_fen), from_price=format_fen(u.from_price_fen),
           diff=format_fen(u.annual_difference_fen), days=u.days_left, per_year=u.days_per_year,
           price=format_fen(u.price_fen)),
        tr("upgrade.calc_contracts", to_quota=f"{u.to_quota:,}", from_quota=f"{u.from_quota:,}",
           diff=f"{u.quota_difference:,}", days=u.days_left, per_year=u.days_per_year,
           contracts=f"{u.contracts:,}"),
        tr("upgrade.calc_expiry", expiry=local_date(u.expires_at, tr)),
    ]


def upgrade_confirm(tr: Translator, cat: Catalog, ent: Enterprise, u: UpgradeQuote, phone: str | None) -> Screen:
    lines = [
        tr("upgrade.confirm_title"),
        tr("billing.confirm_enterprise", name=ent.name),
        tr("upgrade.confirm_move", source=edition_name(tr, u.from_edition), name=edition_name(tr, u.to_edition)),
        "",
        *upgrade_calculation(tr, u),
        "",
        tr("buy.confirm_total", total=format_fen(u.price_fen)),
    ]
    if phone:
        lines.append(tr("buy.confirm_phone", phone=mask_phone(phone)))
    lines += ["", pay_where(tr, cat, u.quote(), "upgrade.pay_where_web"), tr("buy.confirm_note")]
    markup = inline(
        [button(tr("btn.submit"), BillingGo(action="submit"))],
        [button(tr("upgrade.other_edition"), BillingEnt(action="upgrade", ent=ent.id))],
        back_row(tr, ent),
        nav_row(tr),
    )
    return Screen("\n".join(lines), markup)


def new_edition_confirm(tr: Translator, cat: Catalog, ent: Enterprise, q: Quote, now: datetime,
                        phone: str | None) -> Screen:
    """From 体验版: the edition bought for the enterprise, delivered at payment."""
    lines = [
        tr("upgrade.confirm_title"),
        tr("billing.confirm_enterprise", name=ent.name),
        tr("upgrade.confirm_move", source=edition_name(tr, FREE_EDITION), name=edition_name(tr, q.edition)),
        tr("buy.confirm_line", label=line_label(tr, q.lines[0]), amount=format_fen(q.total_fen)),
        tr("upgrade.confirm_new_expiry", expiry=local_date(add_years(now, q.years), tr)),
        tr("buy.confirm_contracts", contracts=f"{q.contracts:,}"),
        tr("buy.confirm_total", total=format_fen(q.total_fen)),
    ]
    if phone:
        lines.append(tr("buy.confirm_phone", phone=mask_phone(phone)))
    lines += ["", pay_where(tr, cat, q, "upgrade.pay_where_web"), tr("buy.confirm_note")]
    markup = inline(
        [button(tr("btn.submit"), BillingGo(action="submit"))],
        [button(tr("upgrade.other_edition"), BillingEnt(action="upgrade", ent=ent.id))],
        back_row(tr, ent),
        nav_row(tr),
    )
    return Screen("\n".join(lines), markup)


# --- 增值服务 value-added services (F9) --------------------------------------------------------


def unlock_button(tr: Translator, ent: Enterprise, a: Availability) -> list[InlineKeyboardButton]:
    if a.unlock == "upgrade":
        return [button(tr("value_added.unlock_upgrade", name=service_name(tr, a.service)),
                       BillingEnt(action="upgrade", ent=ent.id))]
    if a.unlock == "buy_edition":
        return [button(tr("value_added.unlock_buy", name=service_name(tr, a.service)),
                       BillingEnt(action="upgrade", ent=ent.id))]
    return []


def services(tr: Translator, ent: Enterprise, now: datetime, offers: list[Availability]) -> Screen:
    """All four services; the unavailable ones with the rule, the reason and what unlocks them."""
    edition = ent.paid_edition(now)
    lines = [tr("value_added.title", name=ent.name, edition=edition_name(tr, edition))]
    rows = []
    for a in offers:
        name = service_name(tr, a.service)
        if a.available:
            lines.append(tr("value_added.available", name=name, about=tr(f"value_added.about_{a.service}")))
            rows.append([button(tr("value_added.buy_button", name=name), BillingPick(what="service", code=a.service))])
        else:
            lines.append(tr("value_added.unavailable", name=name,
                            reason=tr(f"value_added.reason_{a.reason}"), unlock=tr(f"value_added.how_{a.unlock}")))
            rows.append([button(tr("value_added.locked_button", name=name), BillingPick(what="service", code=a.service))])
    if ent.running_trial(now) is not None:
        lines.append(tr("value_added.trial_note"))
    unlocks = {a.unlock for a in offers if not a.available}
    extra = [unlock_button(tr, ent, next(a for a in offers if a.unlock == u)) for u in ("upgrade", "buy_edition")
             if u in unlocks]
    extra = [row for row in extra if row][:1]  # one way to unlock is enough: both lead to 升级版本
    return Screen("\n".join(lines), inline(*rows, *extra, back_row(tr, ent), nav_row(tr)))


def service_options(tr: Translator, ent: Enterprise, cat: Catalog, service: str) -> Screen:
    name = service_name(tr, service)
    if service == CONTRACT_PACK:
        rows = [[button(tr("buy.pack_button", name=pack_name(tr, p.code), price=format_fen(p.price_fen)),
                        BillingPick(what="option", code=p.code))] for p in cat.addon_packs]
    elif service == SIGNING_REPORT:
        rows = [[button(tr("value_added.report_button", reports=f"{p.reports:,}", price=format_fen(p.price_fen)),
                        BillingPick(what="option", code=p.code))] for p in cat.report_packs]
    else:
        yearly = cat.yearly_service(service)
        rows = [[button(tr("buy.years_button", years=y, price=format_fen(yearly.price_per_year_fen * y)),
                        BillingPick(what="years", code=str(y)))] for y in cat.years] if yearly else []
    text = tr("value_added.options_title", name=name, about=tr(f"value_added.about_{service}"))
    if not rows:
        text += "\n" + tr("value_added.not_on_sale")
    return Screen(text, inline(*rows, [button(tr("value_added.other_service"), BillingEnt(action="services", ent=ent.id))],
                               nav_row(tr)))


def service_confirm(tr: Translator, cat: Catalog, ent: Enterprise, q: Quote, now: datetime,
                    phone: str | None) -> Screen:
    line = q.lines[0]
    lines = [
        tr("value_added.confirm_title"),
        tr("billing.confirm_enterprise", name=ent.name),
        tr("buy.confirm_line", label=line_label(tr, line), amount=format_fen(line.amount_fen)),
    ]
    if line.kind == "pack":
        lines.append(tr("value_added.confirm_contracts", before=f"{ent.contracts_left:,}",
                        after=f"{ent.contracts_left + q.contracts:,}"))
    elif line.kind == "service":
        current = ent.subscriptions.get(line.code)
        start = current if current and current > now else now
        lines.append(tr("value_added.confirm_until", until=local_date(add_years(start, line.quantity), tr)))
    lines.append(tr("buy.confirm_total", total=format_fen(q.total_fen)))
    if phone:
        lines.append(tr("buy.confirm_phone", phone=mask_phone(phone)))
    lines += ["", pay_where(tr, cat, q), tr("buy.confirm_note")]
    markup = inline(
        [button(tr("btn.submit"), BillingGo(action="submit"))],
        [button(tr("value_added.other_service"), BillingEnt(action="services", ent=ent.id))],
        nav_row(tr),
    )
    return Screen("\n".join(lines), markup)


# --- paying: on the web, delivered ---------------------------------------------------------------


def web_pay(tr: Translator, order: Order, url: str, cat: Catalog) -> Screen:
    """R2, R4: the order is made; the chat cannot take this payment: the link to copy."""
    edition = cat.edition(order.edition) if order.kind is not OrderKind.SERVICE else None
    if edition is not None and not edition.chat_payable:  # 专业版, 旗舰版
        why = tr("billing.web_why_edition", name=edition_name(tr, order.edition), reason=chat_payment_rule(tr, cat))
    else:
        why = tr("billing.web_why_limit")
    text = tr("billing.web_pay", order_id=order.id, label=order_label(tr, order), total=format_fen(order.total_fen),
              why=why, url=url)
    markup = inline(
        [link(tr("btn.web_buy"), url)],
        [button(tr("btn.consult"), Nav(to="consult"))],
        [button(tr("btn.my_orders"), Nav(to="orders"))],
        nav_row(tr),
    )
    return Screen(text, markup)


def delivered(tr: Translator, order: Order) -> Screen:
    """Paid and delivered to the enterprise at once (no binding step)."""
    note = order.delivery
    assert note is not None
    lines = [
        tr("billing.delivered", order_id=order.id, label=order_label(tr, order), total=format_fen(order.total_fen),
           name=note.enterprise_name),
        tr("billing.ov_edition", edition=edition_name(tr, note.edition if note.expires_at else FREE_EDITION)),
        tr("billing.ov_expiry", expiry=local_date(note.expires_at, tr)),
        tr("billing.ov_contracts", contracts=f"{note.contracts_left:,}"),
    ]
    for code, until in sorted(note.subscriptions.items()):
        lines.append(tr("billing.ov_subscription", name=service_name(tr, code), until=local_date(until, tr)))
    if note.services.get(SIGNING_REPORT):
        lines.append(tr("billing.ov_reports", reports=f"{note.services[SIGNING_REPORT]:,}"))
    rows = []
    if order.enterprise_id:
        rows.append([button(tr("billing.back_to_enterprise"), BillingEnt(action="view", ent=order.enterprise_id))])
    rows.append([button(tr("btn.my_orders"), Nav(to="orders"))])
    return Screen("\n".join(lines), inline(*rows, nav_row(tr)))


def order_detail_lines(tr: Translator, order: Order) -> list[str]:
    """Extra lines of an enterprise order's details in 我的订单."""
    lines = [tr("billing.detail_kind", label=order_label(tr, order))]
    if order.for_enterprise and order.delivery is not None:
        lines.append(tr("billing.detail_delivered", name=order.delivery.enterprise_name))
    return lines


# --- reminders (services.scheduler) --------------------------------------------------------------


def reminder(tr: Translator, r: Reminder) -> Screen:
    values = {"name": r.enterprise_name, "edition": edition_name(tr, r.edition), "until": local_time(r.until),
              "days": r.days_left, "back": edition_name(tr, r.back_to)}
    text = tr(f"billing.reminder_{r.kind}", **values)
    rows = [[button(tr("billing.btn_renew"), BillingEnt(action="renew", ent=r.enterprise_id))]]
    if r.kind.startswith("trial") or r.kind == "edition_expired":
        rows[0].append(button(tr("billing.btn_upgrade"), BillingEnt(action="upgrade", ent=r.enterprise_id)))
    rows.append([button(tr("billing.back_to_enterprise"), BillingEnt(action="view", ent=r.enterprise_id))])
    return Screen(text, inline(*rows, nav_row(tr)))

