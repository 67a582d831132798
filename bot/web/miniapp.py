"""Telegram Mini App `initData` (the data a web_app button hands the page): its HMAC and its age.

Telegram signs initData with a key derived from the bot token: secret = HMAC_SHA256(key="WebAppData",
msg=bot_token); hash = HMAC_SHA256(secret, data_check_string), where the data-check string is
every field but `hash`, sorted, as `key=value` lines. Data signed for another bot fails the HMAC.
aiogram's helper checks only that; here `auth_date` must also be recent (max_age_seconds).
"""
from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import parse_qsl

MAX_INIT_DATA = 8192  # Telegram's initData is a few hundred bytes


class InitDataRejected(ValueError):
    """`reason`: malformed, bad_hash (forged, or signed for another bot), too_old, from_future."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class MiniAppUser:
    id: int
    language_code: str | None
    auth_date: int


def sign_init_data(fields: dict[str, str], bot_token: str) -> str:
    """The hash Telegram puts in initData for these fields (tests build initData with it)."""
    check = "\n".join(f"{k}={v}" for k, v in sorted(fields.items()))
    secret = hmac.new(b"WebAppData", bot_token.encode(), hashlib.sha256).digest()
    return hmac.new(secret, check.encode(), hashlib.sha256).hexdigest()


def validate_init_data(init_data: str, bot_token: str, *, now: datetime, max_age_seconds: int) -> MiniAppUser:
    """The Mini App user, when initData is signed for this bot and recent; else InitDataRejected."""
    if not init_data or len(init_data) > MAX_INIT_DATA:
        raise InitDataRejected("malformed")
    try:
        pairs = parse_qsl(init_data, keep_blank_values=True, strict_parsing=True)
    except ValueError:
        raise InitDataRejected("malformed") from None
    fields = dict(pairs)
    if len(fields) != len(pairs):
        raise InitDataRejected("malformed")  # a repeated field: never from Telegram
    received = fields.pop("hash", "")
    if not received or not hmac.compare_digest(sign_init_data(fields, bot_token).encode(), received.encode()):
        raise InitDataRejected("bad_hash")
    try:
        auth_date = int(fields["auth_date"])
        user = json.loads(fields["user"])
        user_id = int(user["id"])
    except (KeyError, ValueError, TypeError):
        raise InitDataRejected("malformed") from None
    age = now.timestamp() - auth_date
    if age > max_age_seconds:
        raise InitDataRejected("too_old")
    if age < -60:
        raise InitDataRejected("from_future")
    return MiniAppUser(id=user_id, language_code=user.get("language_code"), auth_date=auth_date)
