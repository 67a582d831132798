"""Logging: one JSON object per line, the ids of the update it belongs to as fields of its own.

- Every line logged while an update is handled carries `update_id`, `user_id` and, once known,
  `order_id` (and whatever else `bind()` adds) as top-level JSON keys: LogContext binds them
  per update (contextvars), the conversation middleware binds the session's order, and a
  failed update's line (bot/errors.py) carries the ids the update had bound when it failed.
- A line's own `key=%s` placeholders become JSON keys too, typed (ints stay ints), with
  `order`, `user`, `ticket`, `update`, `chat`, `agent`, `enterprise` read as `<name>_id`:
  `log.info("payment.paid order=%s total=%s", oid, 480000)` gives
  {"event": "payment.paid", "order_id": "o1", "total": 480000, "message": "payment.paid order=o1 total=480000"}.
  `extra={...}` keys are kept as fields as well.
- Phone numbers never reach a log in clear: every text (the message's text arguments, string
  fields, exceptions) is masked down to the last four digits of any number phonenumbers takes
  for a valid one (E.164, international with spaces or dashes, national, 86- or 0086-prefixed,
  RFC 3966), any + or 00 number, and any mainland mobile. Ids logged as ints are left alone.
"""
from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from functools import lru_cache
from types import MappingProxyType
from typing import Any

import phonenumbers
from aiogram import BaseMiddleware
from aiogram.types import TelegramObject, Update

_context: ContextVar[Mapping[str, Any]] = ContextVar("log_context", default=MappingProxyType({}))
CAPTURED = "_esign_log_context"  # the ids an update had bound, kept on the exception it raised

# Runs of digits with what people put between them (spaces, dashes, dots, slashes, brackets),
# optionally after a + : what a phone number looks like in text. Not glued to letters or digits.
CANDIDATE = re.compile(r"(?<![\w+])\+?\(?\d[\d \t\u00a0().\-/]{4,24}\d(?![\w])")
MOBILE = re.compile(r"^(?:\+?86|0086)?1[3-9]\d{9}$")
DATE_OR_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}|^\d{1,2}:\d{2}")
MASK = "*******"
ALIASES = {"order": "order_id", "user": "user_id", "ticket": "ticket_id", "update": "update_id",
           "chat": "chat_id", "agent": "agent_id", "enterprise": "enterprise_id", "ent": "enterprise_id"}
PLACEHOLDER = re.compile(r"%(?:\((\w+)\))?[-#0 +]*(?:\*|\d+)?(?:\.(?:\*|\d+))?[hlL]?([diouxXeEfFgGcrsa%])")
EVENT = re.compile(r"^[a-z][a-z0-9_]*(?:\.[a-z0-9_]+)+")
RESERVED = frozenset({"ts", "level", "logger", "event", "message", "exc"})
RECORD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


def bind(**fields: Any) -> None:
    """Add ids (order_id=..., ticket_id=...) to every log line of the current update."""
    _context.set({**_context.get(), **fields})


def bound() -> Mapping[str, Any]:
    return _context.get()


@contextmanager
def logging_context(fields: Mapping[str, Any]) -> Iterator[None]:
    """These ids on every line logged inside the block (and only there)."""
    token = _context.set(dict(fields))
    try:
        yield
    finally:
        _context.reset(token)


def captured(exc: BaseException) -> Mapping[str, Any]:
    """The ids bound when `exc` left the update (LogContext keeps them on it)."""
    fields = getattr(exc, CAPTURED, None)
    return fields if isinstance(fields, Mapping) else {}


# --- masking ----------------------------------------------------------------------------------


@lru_cache(maxsize=4096)
def _is_phone(text: str) -> bool:
    digits = sum(ch.isdigit() for ch in text)
    if not 7 <= digits <= 15 or DATE_OR_TIME.match(text):
        return False
    compact = re.sub(r"[^\d+]", "", text)
    if MOBILE.match(compact) or (compact.startswith(("+", "00")) and digits >= 8):
        return True
    try:
        return phonenumbers.is_valid_number(phonenumbers.parse(text, "CN"))
    except phonenumbers.NumberParseException:
        return False


def _masked(text: str) -> str:
    digits = [ch for ch in text if ch.isdigit()]
    return MASK + "".join(digits[-4:])


def _mask_candidate(match: re.Match[str]) -> str:
    text = match.group(0)
    if _is_phone(text):
        return _masked(text)
    # Perhaps a number next to other digits ("13800138000 5"): the longest phone-like runs of
    # its space-separated groups, the spaces between them kept.
    parts = re.split(r"(\s+)", text)  # group, space, group, space, ..., group
    groups, spaces = parts[0::2], parts[1::2]
    out: list[str] = []
    i = 0
    while i < len(groups):
        for j in range(len(groups), i, -1):
            window = "".join(g + (spaces[k] if k < j - 1 else "") for k, g in enumerate(groups[i:j], start=i))
            if _is_phone(window):
                out.append(_masked(window))
                break
        else:
            j = i + 1
            out.append(groups[i])
        if j < len(groups):
            out.append(spaces[j - 1])
        i = j
    return "".join(out)


def mask_digits(text: str) -> str:
    """`text` with every phone number in it masked to its last four digits."""
    if sum(ch.isdigit() for ch in text) < 7:
        return text
    return CANDIDATE.sub(_mask_candidate, text)


def _safe(value: Any) -> Any:
    """A value as a log may hold it: numbers as they are, text masked."""
    if value is None or isinstance(value, bool | int | float):
        return value
    return mask_digits(str(value))


# --- records ----------------------------------------------------------------------------------


def structured(record: logging.LogRecord) -> tuple[str, str, dict[str, Any]]:
    """(event, message, fields) of a record: the message with its text arguments masked, and
    its `key=%s` placeholders and `extra` keys as fields."""
    fmt = str(record.msg)
    args = record.args if isinstance(record.args, tuple) else ()
    safe_args = tuple(_safe(a) for a in args)
    try:
        if isinstance(record.args, Mapping):
            message = fmt % {k: _safe(v) for k, v in record.args.items()}
        else:
            message = fmt % safe_args if args else mask_digits(fmt)
    except (TypeError, ValueError, KeyError):
        message = mask_digits(" ".join([fmt, *map(str, safe_args)]))
    fields: dict[str, Any] = {}
    index = 0
    for placeholder in PLACEHOLDER.finditer(fmt):
        if placeholder.group(2) == "%":
            continue
        if index >= len(safe_args):
            break
        key = re.search(r"(\w+)=$", fmt[:placeholder.start()])
        if key:
            name = ALIASES.get(key.group(1), key.group(1))
            fields[f"field_{name}" if name in RESERVED else name] = safe_args[index]
        index += 1
    for name, value in vars(record).items():
        if name not in RECORD_ATTRIBUTES and not name.startswith("_"):
            fields[f"field_{name}" if name in RESERVED else name] = _safe(value)
    found = EVENT.match(fmt)
    return (found.group(0) if found else "log"), message, fields


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        event, message, fields = structured(record)
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": event,
            **{k: _safe(v) for k, v in _context.get().items()},
            **fields,
            "message": message,
        }
        if record.exc_info:
            entry["exc"] = mask_digits(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        _, message, _ = structured(record)
        ids = " ".join(f"{k}={_safe(v)}" for k, v in _context.get().items())
        line = f"{self.formatTime(record)} {record.levelname} {record.name} {message} {ids}".rstrip()
        if record.exc_info:
            line += "\n" + mask_digits(self.formatException(record.exc_info))
        return line


def setup_logging(level: str = "INFO", fmt: str = "json") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("aiogram.event").setLevel(logging.WARNING)  # one line per update is noise


class LogContext(BaseMiddleware):
    """Outermost of ours: every log line of an update carries its update and user ids, and what
    the handlers bind. An update that raises takes its ids along (`captured`), so the error
    guard's line carries them too."""

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
        except Exception as exc:
            setattr(exc, CAPTURED, dict(_context.get()))
            raise
        finally:
            _context.reset(token)
