"""The one aiohttp application: Telegram webhook, checkout pages, payment notices, /healthz.

`build_web_app(app_context, bot, dispatcher)` is the only wiring; `python -m bot run` (both
polling and webhook mode), the playground and the tests all use it.

    /telegram/webhook (WEBHOOK_PATH)         updates, handled inside the request (bot/web/webhook.py)
    /checkout/{token}                        the purchase, step by step (bot/web/pages.py)
    /sandbox/pay/{payment_id}                the sandbox gateway's cashier page
    /payments/notify/{gateway}               asynchronous payment notices (bot/web/payments.py)
    /healthz                                 liveness: the process answers (200)
    /readyz                                  readiness: Redis answers: 200, else 503
    /metrics                                 Prometheus metrics (bot/runtime/metrics.py)
    /static/...                              CSS and the optional JavaScript
"""
from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Awaitable, Callable

from aiogram import Bot, Dispatcher
from aiohttp import web
from redis.exceptions import RedisError

from bot.context import AppContext
from bot.runtime.metrics import exposition
from bot.web import pages, payments
from bot.web.render import STATIC, Renderer, choose_lang
from bot.web.security import Csrf, RateLimiter, redact_path, security_headers
from bot.web.state import STATE, PageError, WebState, state
from bot.web.webhook import add_webhook_route
from config.settings import Settings

log = logging.getLogger("bot.web")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def webhook_secret(settings: Settings, bot_token: str) -> str:
    """WEBHOOK_SECRET, or one derived from the bot token: every replica agrees on it."""
    if settings.webhook_secret and settings.webhook_secret.get_secret_value():
        return settings.webhook_secret.get_secret_value()
    return hmac.new(bot_token.encode(), b"esign-webhook-secret", hashlib.sha256).hexdigest()


def build_web_app(
    app_context: AppContext,
    bot: Bot,
    dispatcher: Dispatcher | None = None,
    *,
    webhook_path: str | None = None,
    webhook_secret_token: str | None = None,
) -> web.Application:
    """The web app, on the services the composition root built. With `dispatcher`, a web
    payment is told to staff by its help desk, and with `webhook_path` too the app takes
    Telegram's updates (the secret token is checked)."""
    settings = app_context.settings
    https = settings.public_base_url.startswith("https://")
    csrf_key = hmac.new(bot.token.encode(), b"esign-web-csrf", hashlib.sha256).digest()
    st = WebState(
        app=app_context, bot=bot, desk=dispatcher["desk"] if dispatcher is not None else None,
        renderer=Renderer(app_context.texts), csrf=Csrf(csrf_key, secure=https),
        limiter=RateLimiter(app_context.redis, app_context.clock),
        public_origin=settings.public_base_url, https=https,
        headers=security_headers(https=https, form_action_origins=sorted(
            {origin for gateway in app_context.gateways for origin in gateway.form_action_origins})),
    )
    web_app = web.Application(middlewares=[guard], client_max_size=256 * 1024)
    web_app[STATE] = st
    web_app.router.add_get("/healthz", healthz)
    web_app.router.add_get("/readyz", readyz)
    web_app.router.add_get("/metrics", metrics)
    pages.add_routes(web_app.router)
    payments.add_routes(web_app.router)
    web_app.router.add_static("/static/", STATIC, append_version=False)
    if dispatcher is not None and webhook_path:
        add_webhook_route(web_app, webhook_path, dispatcher, bot, webhook_secret_token or webhook_secret(settings, bot.token))

    async def close_gateway(_: web.Application) -> None:
        for gateway in app_context.gateways:
            await gateway.close()

    web_app.on_cleanup.append(close_gateway)
    return web_app


async def healthz(request: web.Request) -> web.Response:
    """Liveness: a load balancer or supervisor restarts a process that stops answering this."""
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Readiness: send traffic here only while Redis answers."""
    try:
        await state(request).app.redis.ping()
    except (RedisError, OSError):
        return web.json_response({"status": "unavailable", "redis": "down"}, status=503)
    return web.json_response({"status": "ok", "redis": "up"})


async def metrics(request: web.Request) -> web.Response:
    body, content_type = exposition()
    return web.Response(body=body, headers={"Content-Type": content_type})


def error_page(request: web.Request, status: int, key: str, *, lang: str | None = None,
               chat_url: str | None = None, **params: object) -> web.Response:
    st = state(request)
    lang = lang or choose_lang(request, None)
    tr = st.renderer.tr(lang)
    return st.renderer.page(
        request, "error.html", lang=lang, status=status, here=request.path if request.method == "GET" else "/",
        title=tr(f"checkout.error.{key}_title"), body=tr(f"checkout.error.{key}_body", **params) if params
        else tr(f"checkout.error.{key}_body"), chat_url=chat_url,
    )


@web.middleware
async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refusals as clear pages with a 4xx status, never a stack trace; security headers and the
    CSRF cookie on every answer."""
    st = state(request)
    try:
        response: web.StreamResponse = await handler(request)
    except PageError as refusal:
        response = error_page(request, refusal.status, refusal.key, lang=refusal.lang,
                              chat_url=await st.chat_url(), **refusal.params)
        response.headers.update(refusal.headers)
    except web.HTTPException as exc:
        if exc.status in (404, 405) and request.method in ("GET", "HEAD", "POST"):
            response = error_page(request, exc.status, "not_found" if exc.status == 404 else "bad_request")
        else:
            kept = {k: v for k, v in exc.headers.items() if k.lower() not in ("content-length", "content-type")}
            response = web.Response(status=exc.status, text=exc.text or exc.reason, headers=kept)
    except Exception:
        log.exception("web.error method=%s path=%s", request.method, redact_path(request.path))
        response = error_page(request, 500, "server")
    for name, value in st.headers.items():
        response.headers.setdefault(name, value)
    st.csrf.set_cookie(request, response)
    return response
