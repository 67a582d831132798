"""What every route of the web app shares (its state, kept on the aiohttp app) and the refusal
shown as a page."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

from aiogram import Bot
from aiohttp import web

from bot.context import AppContext
from bot.flows.support.desk import Desk
from bot.web.render import Renderer
from bot.web.security import Csrf, RateLimiter
from config.settings import Settings
from services.checkout import CheckoutLinks, WebCheckout
from services.payment_gateway import PaymentGateway

log = logging.getLogger("bot.web")


class PageError(Exception):
    """A refusal shown as a page: `key` names checkout.error.<key>_title / _body."""

    def __init__(self, status: int, key: str, *, lang: str | None = None, headers: dict[str, str] | None = None,
                 **params: object) -> None:
        super().__init__(key)
        self.status = status
        self.key = key
        self.lang = lang
        self.headers = headers or {}
        self.params = params


@dataclass
class WebState:
    app: AppContext
    bot: Bot
    desk: Desk | None  # the help desk, when the app serves a dispatcher's bot
    renderer: Renderer
    csrf: Csrf
    limiter: RateLimiter
    public_origin: str
    https: bool
    headers: dict[str, str] = field(default_factory=dict)
    bot_username: str | None = None
    # Where 返回聊天 goes instead of t.me: the playgrounds' own chat page ("" : no such link).
    chat_page: str | None = None

    @property
    def settings(self) -> Settings:
        return self.app.settings

    @property
    def gateway(self) -> PaymentGateway:
        return self.app.gateway

    @property
    def links(self) -> CheckoutLinks:
        return self.app.checkout

    @property
    def checkout(self) -> WebCheckout:
        return self.app.web_checkout

    async def chat_url(self, payload: str | None = None) -> str | None:
        """https://t.me/<bot>?start=<payload>: back to the chat (None if getMe fails)."""
        if self.chat_page is not None:
            return self.chat_page or None
        if self.bot_username is None:
            try:
                self.bot_username = (await self.bot.me()).username
            except Exception:  # the page still works without the link
                log.warning("web.get_me_failed")
                return None
        if not self.bot_username:
            return None
        return f"https://t.me/{self.bot_username}" + (f"?start={payload}" if payload else "")


STATE: web.AppKey[WebState] = web.AppKey("esign_web_state", WebState)


def state(request: web.Request) -> WebState:
    return request.app[STATE]
