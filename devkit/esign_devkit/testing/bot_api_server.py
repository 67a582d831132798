"""Serves a FakeTelegram over HTTP, so a real bot process can long-poll it.

Point aiogram at it with `AiohttpSession(api=TelegramAPIServer.from_base(base_url))`.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from aiohttp import web

from esign_devkit.testing.fake_telegram import JSON, FakeApiError, FakeTelegram

# Free-text fields are never JSON-decoded, even when they happen to look like JSON.
TEXT_FIELDS = frozenset({
    "text", "caption", "title", "description", "payload", "name", "error_message", "provider_data",
    "start_parameter", "url", "callback_query_id", "pre_checkout_query_id", "chat_id", "from_chat_id",
})


def _decode(key: str, value: Any) -> Any:
    """aiogram form-encodes nested values (reply_markup, prices, ...) as JSON strings."""
    if isinstance(value, str) and key not in TEXT_FIELDS and value[:1] in ("{", "["):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


async def _read_params(request: web.Request) -> JSON:
    params: JSON = dict(request.query)
    if request.content_type == "application/json":
        body = await request.json()
        if isinstance(body, dict):
            params.update(body)
    elif request.can_read_body:
        form = await request.post()
        # Uploaded files are dropped: their params read "attach://<field>" and get a fresh file_id.
        params.update({k: v for k, v in form.items() if isinstance(v, str)})
    return {key: _decode(key, value) for key, value in params.items()}


def create_bot_api_app(fake: FakeTelegram, token: str) -> web.Application:
    """An aiohttp app answering `GET|POST /bot{token}/{method}` from the fake."""

    async def handle(request: web.Request) -> web.Response:
        if request.match_info["token"] != token:
            return web.json_response({"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401)
        try:
            result = await fake.call(request.match_info["method"], await _read_params(request))
        except FakeApiError as error:
            return web.json_response(error.to_response(), status=error.error_code)
        return web.json_response({"ok": True, "result": result})

    async def release_pollers(_: web.Application) -> None:
        fake.release_pollers()  # a waiting getUpdates would otherwise hold the shutdown for its whole timeout

    app = web.Application()
    app.router.add_route("*", "/bot{token}/{method}", handle)
    app.on_shutdown.append(release_pollers)
    return app


async def serve_bot_api(
    fake: FakeTelegram, token: str, host: str = "127.0.0.1", port: int = 0
) -> tuple[web.AppRunner, str]:
    """Start the app on a real socket (port 0 = any free one); returns (runner, base_url).

    Stop it with `await runner.cleanup()`."""
    runner = web.AppRunner(create_bot_api_app(fake, token), access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound_port = runner.addresses[0][1]
    return runner, f"http://{host}:{bound_port}"


async def wait_for_message(
    fake: FakeTelegram,
    chat_id: int,
    predicate: Callable[[JSON], bool] | None = None,
    timeout: float = 10.0,
    *,
    since: int | None = None,
) -> JSON:
    """Wait until the bot sends or edits a message in the chat matching the predicate.

    Counts only messages after the call unless `since=len(fake.bot_log)` was taken earlier."""
    return await fake.wait_for_message(chat_id, predicate, timeout, since=since)
