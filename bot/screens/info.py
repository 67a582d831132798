"""Information screens from 首页: 退费说明 (R5), 开票说明 (R16), 常见问题, and the personal-edition
entrance 了解企业版服务 (R9). Texts: config/locales/info.*.toml."""
from __future__ import annotations

from aiogram.types import InlineKeyboardButton

from bot.callbacks import InfoPage, Nav
from bot.screens import chat_payment_rule, edition_name, nav_row
from bot.screens.base import Screen, button, inline, link
from config.texts import Translator
from services.catalog import Catalog, format_fen


def pages_row(tr: Translator, *, but: str) -> list[InlineKeyboardButton]:
    """The other information screens."""
    return [button(tr(f"info.btn_{page}"), InfoPage(page=page)) for page in ("refund", "invoice", "faq") if page != but]


def refund(tr: Translator) -> Screen:
    return Screen(tr("info.refund"), inline(pages_row(tr, but="refund"), nav_row(tr)))


def invoice(tr: Translator) -> Screen:
    markup = inline([button(tr("btn.my_orders"), Nav(to="orders"))], pages_row(tr, but="invoice"), nav_row(tr))
    return Screen(tr("info.invoice"), markup)


def faq(tr: Translator, cat: Catalog, faq_url: str) -> Screen:
    text = tr("info.faq", reason=chat_payment_rule(tr, cat), days=cat.trial_days,
              per_year=cat.upgrade_days_per_year, url=faq_url)
    return Screen(text, inline([link(tr("info.faq_more"), faq_url)], pages_row(tr, but="faq"), nav_row(tr)))


def editions(tr: Translator, cat: Catalog) -> Screen:
    """版本详情页 (R9, and 购买套餐's 选购版本): each edition with its 立即购买 — in chat for
    the chat-payable ones, otherwise 网页端购买 through the bot's own checkout (R2) — and its
    申请试用 (R14: the edition chosen here, the enterprise and the one chance checked there)."""
    from bot.callbacks import BillingEnt
    from bot.screens.billing import NONE

    lines = [tr("info.editions_title")]
    rows = []
    for ed in cat.sellable_editions:
        name = edition_name(tr, ed.code)
        lines.append(tr("info.edition_line", name=name, price=format_fen(ed.price_per_year_fen),
                        contracts=f"{ed.contracts_per_year:,}"))
        lines.append(tr(f"info.edition_about_{ed.code}"))
        key = "info.buy_button" if ed.chat_payable else "info.web_button"
        rows.append([button(tr(key, name=name), InfoPage(page=f"buy_{ed.code}")),
                     button(tr("info.trial_button", name=name), BillingEnt(action=f"trial_{ed.code}", ent=NONE))])
    lines += ["", tr("info.editions_chat_only", reason=chat_payment_rule(tr, cat))]
    rows.append([button(tr("btn.consult"), Nav(to="consult"))])
    return Screen("\n".join(lines), inline(*rows, nav_row(tr)))


def verify_guide(tr: Translator, guide_url: str) -> Screen:
    """企业认证指引: how an enterprise is verified, and the vendor's guide."""
    return Screen(tr("info.verify"), inline([link(tr("info.btn_verify_open"), guide_url)], nav_row(tr)))
