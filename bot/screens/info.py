"""Information screens from 首页: 退费说明 (R5), 开票说明 (R16), 常见问题, and the personal-edition
entrance 了解企业版服务 (R9). Texts: config/locales/info.*.toml."""
from __future__ import annotations

from aiogram.types import InlineKeyboardButton

from bot.callbacks import InfoPage, Nav
from bot.screens import edition_name, nav_row
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
    text = tr("info.faq", limit=format_fen(cat.chat_payment_limit_fen), days=cat.trial_days,
              per_year=cat.upgrade_days_per_year, url=faq_url)
    return Screen(text, inline([link(tr("info.faq_more"), faq_url)], pages_row(tr, but="faq"), nav_row(tr)))


def editions(tr: Translator, cat: Catalog, web_url: str) -> Screen:
    """R9: the edition details of the personal home; in chat only 高级版 can be bought."""
    lines = [tr("info.editions_title")]
    chat_payable = []
    for ed in cat.sellable_editions:
        lines.append(tr("info.edition_line", name=edition_name(tr, ed.code), price=format_fen(ed.price_per_year_fen),
                        contracts=f"{ed.contracts_per_year:,}"))
        lines.append(tr(f"info.edition_about_{ed.code}"))
        if ed.chat_payable:
            chat_payable.append(ed)
    names = "、".join(edition_name(tr, e.code) for e in chat_payable) or "—"
    lines += ["", tr("info.editions_chat_only", names=names, limit=format_fen(cat.chat_payment_limit_fen))]
    rows = [[button(tr("info.buy_button", name=edition_name(tr, e.code)), InfoPage(page=f"buy_{e.code}"))]
            for e in chat_payable]
    rows += [[button(tr("btn.consult"), Nav(to="consult"))], [link(tr("btn.web_buy"), web_url)]]
    return Screen("\n".join(lines), inline(*rows, nav_row(tr)))
