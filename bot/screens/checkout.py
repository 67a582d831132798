"""Chat screens of the web checkout (F12, R2, R4): the purchase the chat cannot take, with the
link to finish it on the web. The web payment's result reuses `screens.paid` (立即绑定)."""
from __future__ import annotations

from aiogram.types import InlineKeyboardButton, WebAppInfo

from bot.callbacks import Nav
from bot.screens import chat_payment_rule, edition_name, nav_row
from bot.screens.base import Screen, button, inline, link
from config.texts import Translator
from services.catalog import Cart, Catalog, format_fen


def web_buy_button(tr: Translator, url: str) -> InlineKeyboardButton:
    """网页端购买: a Telegram Mini App when the link is https (Telegram requires it), else a link."""
    if url.startswith("https://"):
        return InlineKeyboardButton(text=tr("btn.web_buy"), web_app=WebAppInfo(url=url))
    return link(tr("btn.web_buy"), url)


def web_only(tr: Translator, cat: Catalog, cart: Cart, url: str, total_fen: int | None,
             *, ttl_minutes: int | None = None) -> Screen:
    """R2: Professional and Flagship, or a total over the chat limit, are bought elsewhere:
    购买咨询, or 网页端购买 with the cart already in the link; the link is also text to copy (R4)."""
    if total_fen is None:
        text = tr("buy.web_only_edition", name=edition_name(tr, cart.edition or ""), url=url,
                  reason=chat_payment_rule(tr, cat))
    else:
        text = tr("buy.web_only_total", total=format_fen(total_fen),
                  limit=format_fen(cat.chat_payment_limit_fen), url=url)
    if ttl_minutes:
        text += "\n" + tr("checkout.link_note", minutes=ttl_minutes)
    markup = inline(
        [button(tr("btn.consult"), Nav(to="consult"))],  # 购买咨询: bot/flows/support (F11)
        [web_buy_button(tr, url)],
        [button(tr("buy.choose_other"), Nav(to="buy"))],
        nav_row(tr),
    )
    return Screen(text, markup)
