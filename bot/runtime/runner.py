"""`python -m bot run`: the bot against the configured Bot API, long polling or webhook."""
from __future__ import annotations

import asyncio
import contextlib
import gc
import hashlib
import json
import logging
import signal
import sys
from typing import TYPE_CHECKING

import redis.asyncio as aioredis
from pydantic import ValidationError
from redis.exceptions import RedisClusterException, RedisError

from bot.cli.admin import redact_url
from bot.runtime.redis_client import describe_error, redis_from_url
from config.settings import Settings
from services import keys
from services.catalog import Catalog, CatalogError, load_catalog

# aiogram takes seconds to import: it is imported only once the settings, the token's presence,
# Redis and the catalog have passed, so those start-up errors are reported at once.
if TYPE_CHECKING:
    from aiogram import Bot, Dispatcher
    from aiohttp import web

log = logging.getLogger(__name__)


class StartupError(Exception):
    """Start-up cannot go on; the message is what the operator sees: one line per problem."""


def load_settings() -> Settings:
    """The settings, or StartupError listing every problem in them at once, one line each."""
    try:
        return Settings()
    except ValidationError as exc:
        raise StartupError("\n".join(settings_problems(exc))) from None


def settings_problems(exc: ValidationError) -> list[str]:
    """One line per invalid variable, then one per rule across settings (production's). When a
    variable is invalid, the rules across settings are checked again with it at its default, so
    that every problem is reported at once (not the ones about that variable twice)."""
    lines, invalid = _problem_lines(exc)
    if invalid:
        try:
            Settings(**{name: Settings.model_fields[name].get_default(call_default_factory=True) for name in invalid})
        except ValidationError as again:
            more, _ = _problem_lines(again)
            lines += [line for line in more if not any(name.upper() in line for name in invalid)]
    return lines


def _problem_lines(exc: ValidationError) -> tuple[list[str], set[str]]:
    lines: list[str] = []
    invalid: set[str] = set()
    for err in exc.errors():
        field = str(err["loc"][0]) if err["loc"] else ""
        message = str(err["msg"]).removeprefix("Value error, ")
        if field:
            invalid.add(field)
            lines.append(f"setting {field.upper()} is invalid: {message}")
        else:  # rules across settings (production's): their message is one line per problem
            lines += message.splitlines()
    return lines, invalid


async def connect_redis(url: str) -> aioredis.Redis:
    """A client that answered PING, on any topology; else StartupError, one line (the URL may
    carry a password: only its redacted form is ever printed)."""
    try:
        redis: aioredis.Redis = redis_from_url(url)
    except (ValueError, RedisError, RedisClusterException) as exc:
        raise StartupError(f"setting REDIS_URL is not a Redis URL: {redact_url(url)} ({describe_error(exc)})") from None
    try:
        await redis.ping()
    except Exception as exc:  # any topology, any failure: one line, never a traceback
        with contextlib.suppress(Exception):
            await redis.aclose()
        raise StartupError(f"Redis at {redact_url(url)} does not answer: {describe_error(exc)}") from None
    return redis


def bot_token(settings: Settings) -> str:
    token = settings.bot_token.get_secret_value().strip() if settings.bot_token else ""
    if not token:
        raise StartupError("BOT_TOKEN is not set: give the token from @BotFather in the BOT_TOKEN environment variable")
    return token


async def warn_if_not_durable(redis: aioredis.Redis, settings: Settings) -> None:
    """Orders and payments live in Redis: in production, say so when it keeps nothing on disk."""
    if settings.environment != "production":
        return
    try:
        appendonly = (await redis.config_get("appendonly")).get("appendonly")
    except Exception:  # CONFIG may be disabled on a managed Redis: nothing to check then
        return
    if appendonly != "yes":
        log.warning("redis.not_durable appendonly=%s: orders and payments are lost if Redis restarts; "
                    "set appendonly yes (docs/reliability.md)", appendonly)


def load_catalog_or_fail(settings: Settings) -> Catalog:
    """The business data (catalog, customer-service hours) is checked before anything starts."""
    from services.support_config import SupportConfigError, load_support_config

    try:
        load_support_config(settings.support_config_path)
        catalog = load_catalog(settings.catalog_path)
    except (CatalogError, SupportConfigError) as exc:
        raise StartupError(str(exc)) from None
    if settings.chat_currency == "XTR" and not catalog.has_star_prices:
        raise StartupError(f"CHAT_CURRENCY=XTR needs star prices in the catalog {settings.catalog_path} "
                           "(price_per_year_stars, price_stars: docs/payments.md)")
    return catalog


def make_bot(settings: Settings) -> Bot:
    from aiogram import Bot
    from aiogram.client.session.aiohttp import AiohttpSession
    from aiogram.client.telegram import TelegramAPIServer

    from bot.runtime.outbound import OutboundLimits

    token = bot_token(settings)
    session = AiohttpSession(api=TelegramAPIServer.from_base(settings.telegram_api_base))
    session.middleware(OutboundLimits())  # 429 retry_after honoured, ~1 message/s per chat
    try:
        return Bot(token, session=session)
    except Exception as exc:  # aiogram rejects a malformed token
        raise StartupError(f"BOT_TOKEN is not a valid bot token: {exc}") from None


async def check_bot_api(bot: Bot, settings: Settings) -> None:
    """One getMe before anything else, so a wrong token or API base is one line, not a traceback."""
    from aiogram.exceptions import TelegramAPIError, TelegramNetworkError, TelegramUnauthorizedError

    base = settings.telegram_api_base
    try:
        await bot.get_me(request_timeout=10)
    except TelegramUnauthorizedError:
        raise StartupError(f"BOT_TOKEN was rejected by the Bot API at {base} (401 Unauthorized)") from None
    except TelegramNetworkError as exc:
        raise StartupError(f"the Bot API at {base} (TELEGRAM_API_BASE) does not answer: {exc.message}") from None
    except TelegramAPIError as exc:
        raise StartupError(f"the Bot API at {base} (TELEGRAM_API_BASE) refused getMe: {exc.message}") from None


def check_locally(settings: Settings) -> Catalog:
    """What needs no network (the token's presence, the business data), reported together;
    returns the catalog."""
    problems: list[str] = []
    catalog: Catalog | None = None
    try:
        bot_token(settings)
    except StartupError as exc:
        problems.append(str(exc))
    try:
        catalog = load_catalog_or_fail(settings)
    except StartupError as exc:
        problems.append(str(exc))
    if problems or catalog is None:
        raise StartupError("\n".join(problems))
    return catalog


async def serve(settings: Settings) -> None:
    catalog = check_locally(settings)
    redis = await connect_redis(settings.redis_url)
    bot: Bot | None = None
    try:
        from bot.runtime.logs import setup_logging  # imports aiogram, like bot.app: only now

        setup_logging(settings.log_level, settings.log_format)  # LOG_LEVEL was checked with the settings
        await warn_if_not_durable(redis, settings)
        from bot.app import build_context, build_dispatcher  # imports aiogram

        bot = make_bot(settings)
        await check_bot_api(bot, settings)
        dp = build_dispatcher(build_context(settings, redis, catalog=catalog), bot)
    except BaseException:
        await redis.aclose()
        if bot is not None:
            await bot.session.close()
        raise
    from bot.runtime.gc_tuning import tune
    from bot.runtime.jobs import start_background, stop_background  # expiry, trials, reminders, quotes

    tune(settings.gc_thresholds)  # start-up is done: keep it out of collections (docs/performance.md)
    log.info("gc.tuned thresholds=%s frozen=%d", ",".join(map(str, settings.gc_thresholds)), gc.get_freeze_count())
    stop = stop_on_signals()
    workflow = {"dispatcher": dp, "bots": [bot], **dp.workflow_data}
    metrics_runner = await start_metrics(settings)
    jobs = start_background(dp["app"], bot, dp["desk"])
    try:
        await dp.emit_startup(bot=bot, **workflow)
        if settings.webhook_url:
            await serve_webhook(dp, bot, settings, stop)
        else:
            await serve_polling(dp, bot, settings, stop)
    finally:
        # Only now that nothing is in flight any more: the Bot session and Redis.
        await stop_background(jobs)
        if metrics_runner is not None:
            await metrics_runner.cleanup()
        await dp.emit_shutdown(bot=bot, **workflow)
        await bot.session.close()
        await redis.aclose()
        log.info("bot.stopped")


def stop_on_signals() -> asyncio.Event:
    """Set on SIGTERM or SIGINT: the transports stop taking updates and finish the ones in flight."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def stopping(sig: signal.Signals) -> None:
        if not stop.is_set():
            log.info("bot.stop signal=%s: no new updates; finishing the ones in flight", sig.name)
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopping, sig)
    return stop


async def serve_polling(dp: Dispatcher, bot: Bot, settings: Settings, stop: asyncio.Event) -> None:
    from bot.runtime.polling import poll

    log.info("bot.start mode=polling api=%s", settings.telegram_api_base)
    await drop_webhook(bot)
    # The checkout pages and payment notices (F12) are served beside the polling.
    web_runner = await start_web(dp, bot, settings, required=False)

    async def serve_web_until_stopped() -> None:
        if web_runner is not None:
            await stop.wait()
            await web_runner.cleanup()  # stops listening, then lets the requests in flight finish

    web_stopped = asyncio.create_task(serve_web_until_stopped())  # both drain at once, each within the grace
    try:
        await poll(dp, bot, stop, grace=settings.shutdown_grace_seconds)
    finally:
        stop.set()  # also when polling failed: the web app stops with it
        await web_stopped


async def serve_webhook(dp: Dispatcher, bot: Bot, settings: Settings, stop: asyncio.Event) -> None:
    from bot.web.app import webhook_secret

    # Telegram sends the secret token with every update; without WEBHOOK_SECRET one is derived
    # from the bot token, so that every replica checks the same one.
    secret = webhook_secret(settings, bot.token)
    runner = await start_web(dp, bot, settings, required=True, webhook_secret_token=secret)
    assert runner is not None  # required: it raised otherwise
    try:
        await register_webhook_once(dp, bot, settings, secret)
        log.info("bot.start mode=webhook host=%s port=%s", settings.web_host, settings.web_port)
        await stop.wait()
    finally:
        # Stops listening, then waits (up to the grace period) for the requests in flight: each
        # update is handled inside its request, so this finishes them.
        await runner.cleanup()


async def drop_webhook(bot: Bot) -> None:
    """Polling needs no webhook set; a Bot API stand-in without deleteWebhook is not fatal."""
    from aiogram.exceptions import TelegramAPIError

    try:
        await bot.delete_webhook(drop_pending_updates=False)
    except TelegramAPIError as exc:
        log.warning("webhook.not_deleted error=%s", exc.message)


async def register_webhook_once(dp: Dispatcher, bot: Bot, settings: Settings, secret: str) -> bool:
    """setWebhook only when what is registered differs: with several instances behind a load
    balancer, the first one registers and the others (and every restart) leave it alone.
    The secret cannot be read back from Telegram, so its fingerprint is kept in Redis."""
    assert settings.webhook_url  # webhook mode
    url = settings.webhook_url.rstrip("/") + settings.webhook_path
    allowed = sorted(dp.resolve_used_update_types())
    fingerprint = hashlib.sha256(json.dumps([url, secret, allowed]).encode()).hexdigest()
    redis = dp["app"].redis
    key = keys.webhook(bot.id)
    info = await bot.get_webhook_info()
    if info.url == url and await redis.get(key) == fingerprint:
        log.info("webhook.already_registered")
        return False
    await bot.set_webhook(url, secret_token=secret, allowed_updates=allowed)
    await redis.set(key, fingerprint)
    log.info("webhook.registered")
    return True


async def start_web(dp: Dispatcher, bot: Bot, settings: Settings, *, required: bool,
                    webhook_secret_token: str | None = None) -> web.AppRunner | None:
    """The one aiohttp app (bot.web: webhook when given a secret, checkout pages, payment notices,
    /healthz) on WEB_HOST:WEB_PORT. When the port is taken, webhook mode cannot start; polling
    goes on without the web pages, saying so."""
    from aiohttp import web

    from bot.web import build_web_app
    from bot.web.security import RedactingAccessLogger

    web_app = build_web_app(dp["app"], bot, dp, webhook_path=settings.webhook_path if webhook_secret_token else None,
                            webhook_secret_token=webhook_secret_token)
    runner = web.AppRunner(web_app, access_log_class=RedactingAccessLogger,
                           shutdown_timeout=settings.shutdown_grace_seconds)
    await runner.setup()
    try:
        await web.TCPSite(runner, settings.web_host, settings.web_port).start()
    except OSError as exc:
        await runner.cleanup()
        where = f"{settings.web_host}:{settings.web_port}"
        if required:
            raise StartupError(f"cannot listen on WEB_HOST:WEB_PORT {where}: {exc.strerror or exc}") from None
        log.error("web.not_served address=%s error=%s: the chat works, the web checkout does not",
                  where, exc.strerror or exc)
        return None
    log.info("web.start host=%s port=%s public=%s", settings.web_host, settings.web_port, settings.public_base_url)
    return runner


async def start_metrics(settings: Settings) -> web.AppRunner | None:
    """/metrics on its internal listener, METRICS_HOST:METRICS_PORT, when METRICS_PORT is set.
    A taken port is logged, not fatal: the bot serves its users without it."""
    if settings.metrics_port is None:
        return None
    from aiohttp import web

    from bot.web.app import build_metrics_app

    runner = web.AppRunner(build_metrics_app(settings), access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, settings.metrics_host, settings.metrics_port).start()
    except OSError as exc:
        await runner.cleanup()
        log.error("metrics.not_served host=%s port=%s error=%s", settings.metrics_host, settings.metrics_port,
                  exc.strerror or exc)
        return None
    log.info("metrics.start host=%s port=%s", settings.metrics_host, settings.metrics_port)
    return runner


def run() -> int:
    try:
        settings = load_settings()
        asyncio.run(serve(settings))
    except StartupError as exc:
        for line in str(exc).splitlines():
            print(f"error: {line}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        pass
    return 0
