"""The one aiohttp application: Telegram webhook, checkout pages, payment notices, /healthz.

`build_web_app(app_context, bot, dispatcher)` is the only wiring; `python -m bot run` (both
polling and webhook mode), the playground and the tests all use it.

    /telegram/webhook (WEBHOOK_PATH)         updates, handled inside the request (bot/web/webhook.py)
    /checkout/{token}                        the purchase, step by step (bot/web/pages.py)
    /checkout/{token}/wechat/jsapi|oauth     WeChat Pay JSAPI inside WeChat (bot/web/wechat_jsapi.py)
    /sandbox/pay/{payment_id}                the sandbox gateway's cashier page
    /payments/notify/{gateway}               asynchronous payment notices (bot/web/payments.py)
    /healthz                                 liveness: the process answers (200)
    /readyz                                  readiness: Redis answers: 200, else 503
    /metrics                                 Prometheus metrics (bot/runtime/metrics.py), only with
                                             `Authorization: Bearer <METRICS_TOKEN>`; with METRICS_PORT
                                             only on the internal listener (build_metrics_app)
    /static/...                              CSS and the optional JavaScript
"""
from __future__ import annotations

import hashlib
import hmac
import logging
import time
from collections.abc import Awaitable, Callable

from aiogram import Bot, Dispatcher
from aiohttp import web
from redis.exceptions import RedisError

from bot.context import AppContext
from bot.runtime.metrics import WEB_LATENCY, WEB_REQUESTS, exposition, precreate_routes
from bot.web import pages, payments, wechat_jsapi
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
    web_app = web.Application(middlewares=[timed, guard], client_max_size=256 * 1024)
    web_app[STATE] = st
    web_app.router.add_get("/healthz", healthz)
    web_app.router.add_get("/readyz", readyz)
    if settings.metrics_port is None:  # else only on the internal listener
        web_app.router.add_get("/metrics", metrics_handler(settings))
    pages.add_routes(web_app.router)
    payments.add_routes(web_app.router)
    wechat_jsapi.add_routes(web_app.router)
    web_app.router.add_static("/static/", STATIC, append_version=False)
    if dispatcher is not None and webhook_path:
        add_webhook_route(web_app, webhook_path, dispatcher, bot, webhook_secret_token or webhook_secret(settings, bot.token))

    async def close_gateway(_: web.Application) -> None:
        for gateway in app_context.gateways:
            await gateway.close()

    web_app.on_cleanup.append(close_gateway)
    precreate_routes([*{route_name(r) for r in web_app.router.resources()}, UNMATCHED])
    return web_app


def build_metrics_app(settings: Settings) -> web.Application:
    """The internal listener of METRICS_HOST:METRICS_PORT: /metrics alone (and METRICS_TOKEN,
    when set, checked there too)."""
    metrics_app = web.Application()
    metrics_app.router.add_get("/metrics", metrics_handler(settings, open_without_token=True))
    return metrics_app


UNMATCHED = "unmatched"


def route_name(resource: web.AbstractResource) -> str:
    """The route's pattern (`/checkout/{token}`), never the path itself: a bounded label."""
    return resource.canonical or UNMATCHED


@web.middleware
async def timed(request: web.Request, handler: Handler) -> web.StreamResponse:
    """esign_web_request_seconds by route, esign_web_requests_total by route and status class."""
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        resource = request.match_info.route.resource
        route = route_name(resource) if resource is not None else UNMATCHED
        WEB_LATENCY.labels(route).observe(time.perf_counter() - started)
        WEB_REQUESTS.labels(route, f"{status // 100}xx").inc()


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


def metrics_handler(settings: Settings, *, open_without_token: bool = False) -> Handler:
    """/metrics for Prometheus. With METRICS_TOKEN, only a request carrying it as a bearer token
    is answered (401 otherwise); without one, the web app does not serve it at all (404), the
    internal listener (`open_without_token`) does."""
    token = settings.metrics_token.get_secret_value().encode() if settings.metrics_token else b""

    async def metrics(request: web.Request) -> web.Response:
        if not token and not open_without_token:
            raise web.HTTPNotFound()
        if token:
            scheme, _, given = request.headers.get("Authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token):
                log.info("metrics.refused")
                return web.Response(status=401, text="a bearer token is needed\n",
                                    headers={"WWW-Authenticate": 'Bearer realm="metrics"'})
        body, content_type = exposition()
        return web.Response(body=body, headers={"Content-Type": content_type, "Cache-Control": "no-store"})

    return metrics


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
