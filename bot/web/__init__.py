"""The web side (F12): one aiohttp app for the Telegram webhook, the checkout pages, the payment
notices and /healthz. See bot/web/app.py."""
from bot.web.app import build_web_app

__all__ = ["build_web_app"]
