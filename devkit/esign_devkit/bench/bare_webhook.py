"""Bare aiogram behind a webhook, for the open-loop load test's side-by-side figures.

    python -m esign_devkit.bench.bare_webhook   (settings from the same environment variables
                                                  as `python -m bot run`: BOT_TOKEN,
                                                  TELEGRAM_API_BASE, REDIS_URL, WEB_HOST,
                                                  WEB_PORT, WEBHOOK_URL, WEBHOOK_SECRET)

The bench's trivial flow (esign_devkit.bench.baseline: RedisStorage + RedisEventIsolation, each
text message reads the state, stores one field, moves on and replies) served by aiogram's own
SimpleRequestHandler, under the bot process's settings: the same logging set-up (LOG_LEVEL,
LOG_FORMAT), the same garbage collector settings (GC_THRESHOLDS, start-up frozen), the same
Redis client and pool, the webhook answered after the update is handled, as the bot's is.
"""
from __future__ import annotations

import asyncio
import signal
import sys


async def serve() -> None:
    from aiogram import Bot
    from aiogram.client.session.aiohttp import AiohttpSession
    from aiogram.client.telegram import TelegramAPIServer
    from aiogram.webhook.aiohttp_server import SimpleRequestHandler
    from aiohttp import web

    from bot.runtime.gc_tuning import tune
    from bot.runtime.logs import setup_logging
    from bot.runtime.redis_client import redis_from_url
    from config.settings import Settings
    from esign_devkit.bench.baseline import baseline_dispatcher

    settings = Settings()
    setup_logging(settings.log_level, settings.log_format)
    redis = redis_from_url(settings.redis_url)
    assert settings.bot_token is not None
    bot = Bot(settings.bot_token.get_secret_value(),
              session=AiohttpSession(api=TelegramAPIServer.from_base(settings.telegram_api_base)))
    dp = baseline_dispatcher(redis, 15)
    secret = settings.webhook_secret.get_secret_value() if settings.webhook_secret else None
    app = web.Application()
    SimpleRequestHandler(dp, bot, secret_token=secret, handle_in_background=False).register(app, "/telegram/webhook")

    async def healthz(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    app.router.add_get("/healthz", healthz)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, settings.web_host, settings.web_port).start()
    await bot.set_webhook(f"{settings.webhook_url}/telegram/webhook", secret_token=secret)
    tune(settings.gc_thresholds)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()
    await bot.session.close()
    await redis.aclose()


if __name__ == "__main__":
    asyncio.run(serve())
    sys.exit(0)
