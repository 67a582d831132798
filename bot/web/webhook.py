"""The Telegram webhook: each update is handled inside its request, and the answer tells Telegram
whether to send it again.

    401  the X-Telegram-Bot-Api-Secret-Token header is missing or wrong
    400  the body is not an Update (bad JSON, wrong shape)
    503  a payment that could not be stored (`PaymentNotStored`: Redis did not answer):
         Telegram delivers it again, and it is applied once Redis is back
    200  handled (its errors answered by the guard), or an update of a kind we do not know
         (taken and dropped with a warning, so it is not sent again)

Answering only after handling means that a 2xx is never given for an update that is lost
when the process stops: on SIGTERM the server stops listening and waits for the requests in
flight (bot/runtime/runner.py) before the Bot session and Redis are closed.
"""
from __future__ import annotations

import hmac
import logging

from aiogram import Bot, Dispatcher
from aiogram.methods import TelegramMethod
from aiogram.types import Update
from aiohttp import web

from bot.errors import PaymentNotStored
from bot.runtime.updates import update_kind

log = logging.getLogger("bot.web")

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


def add_webhook_route(app: web.Application, path: str, dispatcher: Dispatcher, bot: Bot, secret: str) -> None:
    expected = secret.encode()

    async def webhook(request: web.Request) -> web.Response:
        if not hmac.compare_digest(request.headers.get(SECRET_HEADER, "").encode(), expected):
            return web.Response(status=401, text="Unauthorized")
        try:
            update = Update.model_validate(await request.json(loads=bot.session.json_loads), context={"bot": bot})
        except ValueError:  # json.JSONDecodeError, pydantic.ValidationError, bad UTF-8
            log.warning("webhook.bad_update")
            return web.Response(status=400, text="Bad Request")
        if update_kind(update) == "unknown":  # nothing to handle: taken, so never sent again
            log.warning("webhook.unknown_update_type update_id=%s", update.update_id)
            return web.json_response({})
        try:
            result = await dispatcher.feed_update(bot, update)
        except PaymentNotStored:
            return web.json_response({"ok": False, "description": "payment not stored, deliver it again"},
                                     status=503)
        except Exception:  # the guard answered the user; a bug would fail the same way if sent again
            log.exception("update.unhandled update_id=%s", update.update_id)
            return web.json_response({})
        if isinstance(result, TelegramMethod):  # a handler that returned a method: call it (aiogram's way)
            await dispatcher.silent_call_request(bot=bot, result=result)
        return web.json_response({})

    app.router.add_post(path, webhook)
