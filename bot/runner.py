"""`python -m bot run`: the bot against the configured Bot API, long polling or webhook."""
from __future__ import annotations

import asyncio
import logging
import sys

import redis.asyncio as aioredis
from aiogram import Bot, Dispatcher
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.webhook.aiohttp_server import SimpleRequestHandler, setup_application
from aiohttp import web
from pydantic import ValidationError
from redis.exceptions import RedisError

from bot.app import build_context, build_dispatcher
from bot.logs import setup_logging
from config.settings import Settings
from services.catalog import CatalogError

log = logging.getLogger(__name__)


class StartupError(Exception):
    """Start-up cannot go on; the message is the one line the operator sees."""


def load_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"]).upper()
        raise StartupError(f"setting {field} is invalid: {err['msg']}") from None


async def connect_redis(url: str) -> aioredis.Redis:
    redis = aioredis.Redis.from_url(url, decode_responses=True, socket_connect_timeout=3,
                                    health_check_interval=30)
    try:
        await redis.ping()
    except (RedisError, OSError) as exc:
        await redis.aclose()
        raise StartupError(f"Redis at {url} does not answer: {exc}") from None
    return redis


def make_bot(settings: Settings) -> Bot:
    if settings.bot_token is None or not settings.bot_token.get_secret_value().strip():
        raise StartupError("BOT_TOKEN is not set: give the token from @BotFather in the BOT_TOKEN environment variable")
    session = AiohttpSession(api=TelegramAPIServer.from_base(settings.telegram_api_base))
    try:
        return Bot(settings.bot_token.get_secret_value().strip(), session=session)
    except Exception as exc:  # aiogram rejects a malformed token
        raise StartupError(f"BOT_TOKEN is not a valid bot token: {exc}") from None


async def serve(settings: Settings) -> None:
    bot = make_bot(settings)
    redis = await connect_redis(settings.redis_url)
    try:
        app = build_context(settings, redis)
    except CatalogError as exc:
        await redis.aclose()
        raise StartupError(str(exc)) from None
    dp = build_dispatcher(app)
    try:
        if settings.webhook_url:
            await serve_webhook(dp, bot, settings)
        else:
            log.info("bot.start mode=polling api=%s", settings.telegram_api_base)
            await bot.delete_webhook(drop_pending_updates=False)
            await dp.start_polling(bot, handle_signals=True, close_bot_session=True)
    finally:
        await redis.aclose()


async def serve_webhook(dp: Dispatcher, bot: Bot, settings: Settings) -> None:
    secret = settings.webhook_secret.get_secret_value() if settings.webhook_secret else None
    web_app = web.Application()
    SimpleRequestHandler(dispatcher=dp, bot=bot, secret_token=secret).register(web_app, path=settings.webhook_path)
    setup_application(web_app, dp, bot=bot)
    await bot.set_webhook(settings.webhook_url.rstrip("/") + settings.webhook_path, secret_token=secret,
                          allowed_updates=dp.resolve_used_update_types())
    runner = web.AppRunner(web_app)
    await runner.setup()
    await web.TCPSite(runner, settings.web_host, settings.web_port).start()
    log.info("bot.start mode=webhook host=%s port=%s", settings.web_host, settings.web_port)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


def run() -> int:
    try:
        settings = load_settings()
        setup_logging(settings.log_level)
        asyncio.run(serve(settings))
    except StartupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        pass
    return 0
