"""Screens as pure functions of data: text and keyboard, no I/O. Texts come from the locale."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from functools import lru_cache

from aiogram.types import InlineKeyboardButton, KeyboardButton, ReplyKeyboardRemove

from bot.callbacks import (
    BillingEnt,
    BindConfirm,
    BindPick,
    BuyAction,
    BuyFor,
    Nav,
    OrderAction,
    PhoneAction,
    PickEdition,
    PickPack,
    PickYears,
    SupportAction,
)
from bot.screens.base import Screen, button, inline, reply_keyboard
from config.texts import Translator
from services.catalog import Cart, Catalog, Quote, format_amount, format_fen
from services.delivery import Conversion
from services.enterprises import Enterprise
from services.orders import Order, OrderStatus
from services.phones import mask_phone
from services.purchase_policy import PurchasePlan

CHINA = timezone(timedelta(hours=8))  # dates are shown in Beijing time


def local_date(moment: datetime | None, tr: Translator) -> str:
    return moment.astimezone(CHINA).strftime("%Y-%m-%d") if moment else tr("common.no_expiry")


def local_time(moment: datetime) -> str:
    return moment.astimezone(CHINA).strftime("%Y-%m-%d %H:%M")


def status_label(tr: Translator, order: Order) -> str:
    """The order's status; a cancelled one whose payment is kept for a refund says so (R21)."""
    if order.status is OrderStatus.CANCELLED and order.refund_pending:
        return tr("status.refund_pending")
    return tr(f"status.{order.status.value}")


def edition_name(tr: Translator, code: str) -> str:
    return tr(f"edition.{code}")


def pack_name(tr: Translator, code: str | None) -> str:
    return tr(f"pack.{code}") if code else tr("pack.none")


def nav_row(tr: Translator, *, back: str | None = None) -> list[InlineKeyboardButton]:
    return list(_nav_row(tr("btn.home"), tr("btn.contact"), tr("btn.back") if back else "", back))


@lru_cache(maxsize=256)
def _nav_row(home: str, contact: str, back_label: str, back: str | None) -> tuple[InlineKeyboardButton, ...]:
    row = [button(home, Nav(to="home")), button(contact, Nav(to="contact"))]
    if back:
        row.insert(0, button(back_label, Nav(to=back)))
    return tuple(row)


# 首页 (F1) -----------------------------------------------------------------------------


def home(tr: Translator, enterprises: list[Enterprise], now: datetime) -> Screen:
    """首页 (F1): for each enterprise the user belongs to, its billing overview (edition, expiry,
    contracts left, services, trial: bot/screens/billing.py) and its 费用管理; without one, the
    personal-edition entrance 了解企业版服务 (R9). 申请试用, the orders, customer service and the
    information screens (退费说明, 开票说明, 常见问题) are always there."""
    from bot.callbacks import BillingEnt, InfoPage
    from bot.screens import billing

    parts = [tr("home.title"), tr("home.intro")]
    parts += [billing.overview(tr, ent, now) for ent in enterprises]
    rows = [[button(tr("btn.buy_plan"), Nav(to="catalog"))]]
    rows += [[button(tr("billing.btn_billing_of", name=ent.name), BillingEnt(action="view", ent=ent.id))]
             for ent in enterprises]
    if not enterprises:
        rows.append([button(tr("billing.btn_about_enterprise"), InfoPage(page="editions")),
                     button(tr("billing.btn_billing"), BillingEnt(action="view", ent=billing.NONE))])
    rows.append([button(tr("billing.btn_trial"), BillingEnt(action="trial", ent=billing.NONE))])
    rows.append([button(tr("btn.my_orders"), Nav(to="orders")), button(tr("btn.contact"), Nav(to="contact"))])
    rows.append([button(tr(f"info.btn_{page}"), InfoPage(page=page)) for page in ("refund", "invoice", "faq")])
    return Screen("\n\n".join(parts), inline(*rows))


# 购买套餐 → 版本选购 (F2) ---------------------------------------------------------------


def chat_payment_rule(tr: Translator, cat: Catalog) -> str:
    """Why an edition cannot be paid in chat (R2): one text, the same on every screen. The chat
    takes the editions the catalog marks chat-payable, up to its one per-order limit."""
    chat = [edition_name(tr, e.code) for e in cat.sellable_editions if e.chat_payable]
    web = [edition_name(tr, e.code) for e in cat.sellable_editions if not e.chat_payable]
    return tr("common.chat_payment_rule", chat_names=name_list(tr, chat), web_names=name_list(tr, web),
              limit=format_fen(cat.chat_payment_limit_fen))


def name_list(tr: Translator, names: list[str]) -> str:
    """专业版、旗舰版 / Professional and Flagship."""
    if not names:
        return "—"
    if tr.lang == "zh" or len(names) == 1:
        return "、".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]


def catalog(tr: Translator, cat: Catalog) -> Screen:
    """购买套餐, as the mini-program's page: 立即购买 (版本选购), 版本续费, 版本升级, each
    value-added service with its 立即购买, and 选购版本 (the edition details, with 申请试用)."""
    from bot.callbacks import BillingEnt, InfoPage
    from bot.screens.billing import NONE, service_name
    from services.value_added import SERVICES

    lines = [tr("catalog.title")]
    for ed in cat.sellable_editions:
        lines.append(tr("catalog.edition_line", name=edition_name(tr, ed.code),
                        price=format_fen(ed.price_per_year_fen), contracts=f"{ed.contracts_per_year:,}"))
    if cat.addon_packs:
        lines.append(tr("catalog.packs_title"))
        for pack in cat.addon_packs:
            lines.append(tr("catalog.pack_line", name=pack_name(tr, pack.code), price=format_fen(pack.price_fen)))
    lines.append("\n" + chat_payment_rule(tr, cat))
    lines.append(tr("catalog.services_title"))
    lines += [tr("catalog.service_line", name=service_name(tr, code), about=tr(f"value_added.about_{code}"))
              for code in SERVICES]
    lines.append(tr("catalog.trial_line", days=cat.trial_days))
    lines.append(tr("catalog.enterprise_note"))
    services = [button(tr("value_added.buy_button", name=service_name(tr, code)),
                       BillingEnt(action=f"svc_{code}", ent=NONE)) for code in SERVICES]
    markup = inline(
        [button(tr("btn.buy_now"), Nav(to="buy"))],
        [button(tr("billing.btn_renew"), BillingEnt(action="renew", ent=NONE)),
         button(tr("billing.btn_upgrade"), BillingEnt(action="upgrade", ent=NONE))],
        services[:2], services[2:],
        [button(tr("catalog.btn_editions"), InfoPage(page="editions"))],
        nav_row(tr),
    )
    return Screen("\n".join(lines), markup)


def choose_edition(tr: Translator, cat: Catalog) -> Screen:
    rows = [
        [button(tr("buy.edition_button", name=edition_name(tr, ed.code),
                   price=format_fen(ed.price_per_year_fen)), PickEdition(code=ed.code))]
        for ed in cat.sellable_editions
    ]
    return Screen(tr("buy.edition_title"), inline(*rows, nav_row(tr, back="catalog")))


def choose_years(tr: Translator, cat: Catalog, cart: Cart) -> Screen:
    ed = cat.edition(cart.edition or "")
    assert ed is not None
    rows = [
        [button(tr("buy.years_button", years=y, price=format_fen(ed.price_per_year_fen * y)), PickYears(years=y))]
        for y in cat.years
    ]
    text = tr("buy.years_title", name=edition_name(tr, ed.code), contracts=f"{ed.contracts_per_year:,}")
    return Screen(text, inline(*rows, nav_row(tr, back="buy")))


def choose_pack(tr: Translator, cat: Catalog, cart: Cart) -> Screen:
    rows = [[button(tr("pack.none"), PickPack(code="none"))]]
    rows += [
        [button(tr("buy.pack_button", name=pack_name(tr, p.code), price=format_fen(p.price_fen)), PickPack(code=p.code))]
        for p in cat.addon_packs
    ]
    text = tr("buy.pack_title", name=edition_name(tr, cart.edition or ""), years=cart.years)
    return Screen(text, inline(*rows, nav_row(tr, back="years")))


# web_only (R2): bot/screens/checkout.py, with the web checkout link.


def review(tr: Translator, cat: Catalog, cart: Cart, q: Quote) -> Screen:
    """产品选购页: what was chosen, priced, and its own 立即购买 (→ 信息补充页)."""
    ed = cat.edition(cart.edition or "")
    assert ed is not None
    text = tr("buy.review", edition=edition_name(tr, ed.code), per_year=f"{ed.contracts_per_year:,}",
              years=cart.years, pack=pack_name(tr, cart.pack), contracts=f"{q.contracts:,}",
              total=format_fen(q.total_fen))
    markup = inline(
        [button(tr("btn.buy_now"), BuyAction(action="buy_now"))],
        [button(tr("buy.change_years"), Nav(to="years")), button(tr("buy.change_pack"), Nav(to="pack"))],
        [button(tr("buy.choose_other"), Nav(to="buy"))],
        nav_row(tr),
    )
    return Screen(text, markup)


def ask_enterprise_name(tr: Translator, current: str | None = None) -> Screen:
    """信息补充页: the enterprise name; one typed before can be kept or typed anew."""
    if current is None:
        return Screen(tr("buy.name_prompt"), inline(nav_row(tr, back="review")))
    text = tr("buy.name_prompt") + "\n\n" + tr("buy.name_current", name=current)
    return Screen(text, inline([button(tr("buy.keep_name", name=current), BuyAction(action="keep_name"))],
                               nav_row(tr, back="review")))


def confirm(tr: Translator, q: Quote, enterprise_name: str, phone: str) -> Screen:
    lines = [tr("buy.confirm_title")]
    for line in q.lines:
        label = (tr("buy.line_edition", name=edition_name(tr, line.code), years=line.quantity)
                 if line.kind == "edition" else pack_name(tr, line.code))
        lines.append(tr("buy.confirm_line", label=label, amount=format_fen(line.amount_fen)))
    lines += [
        tr("buy.confirm_total", total=format_fen(q.total_fen)),
        tr("buy.confirm_contracts", contracts=f"{q.contracts:,}"),
        tr("buy.confirm_enterprise", name=enterprise_name),
        tr("buy.confirm_phone", phone=mask_phone(phone)),
        "",
        tr("buy.confirm_note"),
    ]
    markup = inline(
        [button(tr("btn.submit"), BuyAction(action="submit"))],
        [button(tr("buy.change_name"), BuyAction(action="name"))],
        [button(tr("buy.choose_other"), Nav(to="buy"))],
        nav_row(tr),
    )
    return Screen("\n".join(lines), markup)


def buy_target(tr: Translator, enterprises: list[Enterprise], now: datetime, phone: str) -> Screen:
    """R18, R19: the verified phone has joined verified enterprises; which one is this for?"""
    lines = [tr("buy.target_title", phone=mask_phone(phone))]
    lines += [tr("buy.target_line", name=e.name, edition=edition_name(tr, e.paid_edition(now)),
                 expiry=local_date(e.paid_expiry(now), tr)) for e in enterprises]
    rows = [[button(tr("buy.target_button", name=e.name), BuyFor(ent=e.id))] for e in enterprises]
    rows.append([button(tr("buy.target_other"), BuyFor(ent="other"))])
    return Screen("\n".join(lines), inline(*rows, nav_row(tr, back="buy")))


def confirm_for(tr: Translator, plan: PurchasePlan, ent: Enterprise, phone: str, *, at_once: bool,
                now: datetime) -> Screen:
    """订单确认 of a purchase for a known enterprise, priced on what it has (R18)."""
    from bot.screens import billing

    q = plan.quote
    assert q is not None
    lines = [tr("buy.confirm_title"), tr("buy.confirm_for", name=ent.name,
                                          edition=edition_name(tr, plan.current_edition),
                                          expiry=local_date(plan.current_expiry, tr))]
    if plan.kind == "renewal":
        lines.append(tr("buy.plan_renewal", edition=edition_name(tr, q.edition),
                        before=local_date(plan.current_expiry, tr),
                        after=local_date(billing.renewal_end(ent, q.years, now), tr)))
    elif plan.kind == "upgrade" and plan.upgrade is not None:
        lines.append(tr("buy.plan_upgrade", source=edition_name(tr, plan.current_edition),
                        name=edition_name(tr, q.edition)))
        lines += billing.upgrade_calculation(tr, plan.upgrade)
    else:
        lines.append(tr("buy.plan_edition", edition=edition_name(tr, q.edition)))
    for line in q.lines:
        lines.append(tr("buy.confirm_line", label=billing.line_label(tr, line), amount=format_fen(line.amount_fen)))
    lines += [
        tr("buy.confirm_total", total=format_fen(q.total_fen)),
        tr("buy.confirm_contracts", contracts=f"{q.contracts:,}"),
        tr("buy.confirm_phone", phone=mask_phone(phone)),
        "",
        tr("buy.delivered_at_once" if at_once else "buy.bind_after", name=ent.name),
        tr("buy.confirm_note"),
    ]
    markup = inline(
        [button(tr("btn.submit"), BuyAction(action="submit"))],
        [button(tr("buy.change_target"), BuyAction(action="target"))],
        [button(tr("buy.choose_other"), Nav(to="buy"))],
        nav_row(tr),
    )
    return Screen("\n".join(lines), markup)


def purchase_refused(tr: Translator, plan: PurchasePlan, ent: Enterprise, wanted: str, *, reason: str,
                     whom: str) -> Screen:
    """A purchase the enterprise cannot make (R5, R18): why, before any payment, and what it can do."""
    current, expiry = edition_name(tr, plan.current_edition), local_date(plan.current_expiry, tr)
    if reason == "downgrade":
        text = tr("buy.refused_downgrade", name=ent.name, current=current, expiry=expiry,
                  edition=edition_name(tr, wanted))
    else:
        text = tr("buy.refused_no_rights", name=ent.name, current=current, whom=whom)
    rows = []
    if reason == "downgrade":
        rows.append([button(tr("buy.renew_current", edition=current), BillingEnt(action="renew", ent=ent.id))])
    rows += [
        [button(tr("btn.consult"), Nav(to="consult"))],
        [button(tr("buy.target_other"), BuyFor(ent="other"))],
        [button(tr("buy.choose_other"), Nav(to="buy"))],
        nav_row(tr),
    ]
    return Screen(tr("buy.confirm_title") + "\n" + text, inline(*rows))


def awaiting_payment(tr: Translator, order: Order, minutes: int) -> Screen:
    text = tr("buy.payment_prompt", order_id=order.id, total=format_fen(order.total_fen), minutes=minutes)
    markup = inline(
        [button(tr("btn.pay"), OrderAction(action="pay", order_id=order.id))],
        [button(tr("btn.my_orders"), Nav(to="orders"))],
        nav_row(tr),
    )
    return Screen(text, markup)


# 验证手机号 (F3) ------------------------------------------------------------------------


def ask_phone(tr: Translator) -> Screen:
    keyboard = reply_keyboard(
        [KeyboardButton(text=tr("btn.share_phone"), request_contact=True)],
        [KeyboardButton(text=tr("btn.back")), KeyboardButton(text=tr("btn.contact"))],
    )
    return Screen(tr("phone.prompt"), keyboard)


def code_text(tr: Translator, phone: str, state: str | None) -> str:
    """The code step's text, true to where the code is (F3): sent (type it), not sent yet (a
    cool-down), or no longer usable (too many tries, expired): never a prompt for a dead code."""
    key = {"waiting": "phone.code_waiting", "dead": "phone.code_dead"}.get(state or "", "phone.code_prompt")
    return tr(key, phone=mask_phone(phone))


def ask_code(tr: Translator, phone: str, state: str | None = None) -> Screen:
    markup = inline(
        [button(tr("btn.resend"), PhoneAction(action="resend"))],
        [button(tr("btn.change_phone"), PhoneAction(action="change"))],
        nav_row(tr),
    )
    return Screen(code_text(tr, phone, state), markup)


def verify_guide_row(tr: Translator) -> list[InlineKeyboardButton]:
    """企业认证指引: wherever an unverified buyer is told to verify (R12, R13)."""
    from bot.callbacks import InfoPage
    return [button(tr("info.btn_verify"), InfoPage(page="verify"))]


def keyboard_removed(text: str) -> Screen:
    return Screen(text, ReplyKeyboardRemove())


# 支付 (F4) ------------------------------------------------------------------------------


def paid(tr: Translator, order: Order) -> Screen:
    if order.delivery is not None:  # an enterprise's own order, delivered at once (F7–F9)
        from bot.screens import billing
        return billing.delivered(tr, order)
    from bot.screens.billing import order_label
    text = "\n\n".join([
        tr("pay.success", order_id=order.id, label=order_label(tr, order), total=paid_total(order)),
        tr("pay.reminder"),
    ])
    markup = inline(
        [button(tr("btn.bind_now"), OrderAction(action="bind", order_id=order.id))],
        verify_guide_row(tr),
        [button(tr("btn.my_orders"), Nav(to="orders"))],
        nav_row(tr),
    )
    return Screen(text, markup)


def paid_total(order: Order) -> str:
    """What the buyer paid: the order's total, or its star price when paid in Telegram Stars."""
    paid = order.paid_payment()
    return format_amount(int(paid.get("amount_fen") or order.total_fen), str(paid.get("currency") or order.currency))


def refund_pending(tr: Translator, order_id: str, amount_fen: int, reason: str, *, currency: str = "CNY") -> Screen:
    """A payment that could not be applied: it is kept for a refund, and the buyer is told."""
    text = tr("pay.refund_pending", total=format_amount(amount_fen, currency), order_id=order_id, reason=reason)
    return Screen(text, inline([button(tr("btn.my_orders"), Nav(to="orders"))], nav_row(tr)))


# 我的订单 (F6) --------------------------------------------------------------------------


def order_list(tr: Translator, orders: list[Order]) -> Screen:
    if not orders:
        return Screen(tr("orders.empty"), inline([button(tr("btn.buy_plan"), Nav(to="catalog"))], nav_row(tr)))
    from bot.screens import billing  # renewal, upgrade and service orders name what they buy

    rows = [[button(billing.order_row(tr, o), OrderAction(action="view", order_id=o.id))] for o in orders]
    return Screen(tr("orders.title"), inline(*rows, nav_row(tr)))


def order_detail(tr: Translator, order: Order, enterprise: Enterprise | None, now: datetime | None = None) -> Screen:
    lines = [
        tr("orders.detail_title", order_id=order.id),
        tr("orders.detail_status", status=status_label(tr, order)),
        tr("orders.detail_created", at=local_time(order.created_at)),
    ]
    from bot.screens import billing  # labels of every kind of line (F7–F9 too)

    if order.for_enterprise:
        lines += billing.order_detail_lines(tr, order)
    for line in order.lines:
        lines.append(tr("buy.confirm_line", label=billing.line_label(tr, line), amount=format_fen(line.amount_fen)))
    lines.append(tr("buy.confirm_total", total=format_fen(order.total_fen)))
    lines.append(tr("buy.confirm_contracts", contracts=f"{order.contracts:,}"))
    if order.enterprise_name:
        lines.append(tr("buy.confirm_enterprise", name=order.enterprise_name))
    if order.status is OrderStatus.PENDING:
        lines.append(tr("orders.detail_expires", at=local_time(order.expires_at)))
    if order.paid_at:
        lines.append(tr("orders.detail_paid", at=local_time(order.paid_at)))
    if enterprise is not None:
        lines.append(tr("orders.detail_bound", name=enterprise.name))
    rows = []
    if order.status is OrderStatus.PENDING:
        rows.append([button(tr("btn.pay"), OrderAction(action="pay", order_id=order.id)),
                     button(tr("btn.cancel_order"), OrderAction(action="cancel", order_id=order.id))])
    term_ends = order.term_ends_at()
    if order.status is OrderStatus.PAID and term_ends is not None and now is not None and term_ends <= now:
        lines.append(tr("orders.detail_term_over", end=local_date(term_ends, tr)))
    elif order.status is OrderStatus.PAID:
        rows.append([button(tr("btn.bind_now"), OrderAction(action="bind", order_id=order.id))])
        rows.append(verify_guide_row(tr))
        lines.append(tr("pay.reminder"))
    if order.status in (OrderStatus.PAID, OrderStatus.BOUND):  # R16: 开具发票, by customer service
        rows.append([button(tr("support.btn_invoice"), SupportAction(action="invoice", ref=order.id))])
    rows.append([button(tr("btn.back"), Nav(to="orders"))])
    return Screen("\n".join(lines), inline(*rows, nav_row(tr)))


# 立即绑定 (F5) --------------------------------------------------------------------------


def bind_choose(tr: Translator, order: Order, enterprises: list[Enterprise], phone: str,
                problems: dict[str, str], now: datetime) -> Screen:
    """立即绑定: the verified enterprises the phone joined. One that would refuse the order (a
    higher edition in effect: no downgrade) is named with the reason, not offered; when none
    can take it, the payment can be kept for a refund (R19)."""
    verified = [e for e in enterprises if e.verified]
    unverified = [e.name for e in enterprises if not e.verified]
    note = "\n" + tr("bind.unverified_note", names="、".join(unverified)) if unverified else ""
    if not verified:
        text = tr("bind.none", phone=mask_phone(phone)) + note
        return Screen(text, inline(verify_guide_row(tr), [button(tr("btn.my_orders"), Nav(to="orders"))], nav_row(tr)))
    bindable = [e for e in verified if e.id not in problems]
    lines = [tr("bind.choose_title", order_id=order.id) if bindable else tr("bind.none_bindable", order_id=order.id)]
    for e in verified:
        if e.id in problems:
            lines.append(tr("bind.refused_line", name=e.name, reason=bind_refusal(tr, problems[e.id], e, order, now)))
    rows = [[button(e.name, BindPick(order_id=order.id, enterprise_id=e.id))] for e in bindable]
    if not bindable and "downgrade" in problems.values():
        lines.append(tr("bind.refund_offer", edition=edition_name(tr, order.edition)))
        rows.append([button(tr("bind.btn_refund"), OrderAction(action="refund", order_id=order.id))])
    rows.append([button(tr("btn.back"), Nav(to="orders"))])
    return Screen("\n".join(lines) + note, inline(*rows, nav_row(tr)))


def bind_refusal(tr: Translator, problem: str, ent: Enterprise, order: Order, now: datetime) -> str:
    if problem == "downgrade":
        return tr("bind.reason_downgrade", edition=edition_name(tr, ent.paid_edition(now)),
                  bought=edition_name(tr, order.edition))
    key = f"bind.refused_{problem}"
    return tr(key) if tr.has(key) else tr("bind.refused_other")


def bind_term_over(tr: Translator, order: Order) -> Screen:
    """A bought edition's term runs from the purchase (R13): once it has ended there is
    nothing left to deliver, and binding would only pretend otherwise."""
    text = tr("bind.term_over", order_id=order.id, start=local_date(order.paid_at, tr),
              end=local_date(order.term_ends_at(), tr))
    return Screen(text, inline([button(tr("btn.my_orders"), Nav(to="orders"))], nav_row(tr)))


def refund_requested(tr: Translator, order: Order) -> Screen:
    text = tr("bind.refund_requested", order_id=order.id, total=paid_total(order))
    return Screen(text, inline([button(tr("btn.my_orders"), Nav(to="orders"))], nav_row(tr)))


def bind_no_phone(tr: Translator, order: Order) -> Screen:
    return Screen(tr("bind.no_phone"), inline([button(tr("btn.my_orders"), Nav(to="orders"))], nav_row(tr)))


def bind_confirm(tr: Translator, order: Order, enterprise: Enterprise) -> Screen:
    from bot.screens.billing import order_label
    text = tr("bind.confirm", order_id=order.id, label=order_label(tr, order), name=enterprise.name)
    markup = inline(
        [button(tr("btn.confirm_bind"), BindConfirm(order_id=order.id, enterprise_id=enterprise.id))],
        [button(tr("btn.back"), OrderAction(action="bind", order_id=order.id))],
        nav_row(tr),
    )
    return Screen(text, markup)


def bound(tr: Translator, order: Order, enterprise: Enterprise, conversion: Conversion | None = None) -> Screen:
    text = tr("bind.done", name=enterprise.name, edition=edition_name(tr, enterprise.edition),
              expiry=local_date(enterprise.expires_at, tr), contracts=f"{enterprise.contracts_left:,}")
    if conversion is not None:
        text += "\n" + tr("bind.converted", source=edition_name(tr, conversion.from_edition),
                          days=conversion.days_left, name=edition_name(tr, enterprise.edition),
                          credit=conversion.credited_days)
    return Screen(text, inline([button(tr("btn.my_orders"), Nav(to="orders"))], nav_row(tr)))
