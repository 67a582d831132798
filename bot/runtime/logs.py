"""Logging: one JSON object per line, with the update, user, order and ticket ids in context.

Phone numbers never reach a log in clear: a filter masks any E.164 number or mainland mobile
down to its last four digits, whatever the caller passed.
"""
from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Awaitable, Callable, Mapping
from contextvars import ContextVar
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import TelegramObject, Update

_context: ContextVar[Mapping[str, Any]] = ContextVar("log_context", default=MappingProxyType({}))
# E.164 numbers, and mainland mobiles written without the country code.
PHONE_LIKE = re.compile(r"\+\d{3,11}(\d{4})\b|\b1[3-9]\d{5}(\d{4})\b")


def bind(**fields: Any) -> None:
    """Add ids (order_id=..., ticket_id=...) to every log line of the current update."""
    _context.set({**_context.get(), **fields})


def mask_digits(text: str) -> str:
    return PHONE_LIKE.sub(lambda m: "*******" + (m.group(1) or m.group(2)), text)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": mask_digits(record.getMessage()),
            **_context.get(),
        }
        if record.exc_info:
            entry["exc"] = mask_digits(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        ids = " ".join(f"{k}={v}" for k, v in _context.get().items())
        return mask_digits(f"{super().format(record)} {ids}".rstrip())


def setup_logging(level: str = "INFO", fmt: str = "json") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else
                         TextFormatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("aiogram.event").setLevel(logging.WARNING)  # one line per update is noise


class LogContext(BaseMiddleware):
    """Outermost: every log line of an update carries its update and user ids."""

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        user = data.get("event_from_user")
        fields: dict[str, Any] = {"update_id": event.update_id} if isinstance(event, Update) else {}
        if user is not None:
            fields["user_id"] = user.id
        token = _context.set(fields)
        try:
            return await handler(event, data)
        finally:
            _context.reset(token)
