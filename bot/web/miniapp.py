"""Telegram Mini App `initData` (the data a web_app button hands the page): its signature and its age.

The signature is aiogram's to check (aiogram.utils.web_app.check_webapp_signature: the HMAC keyed
with HMAC_SHA256("WebAppData", bot_token) over the sorted fields; data signed for another bot
fails it), and the fields are parsed by aiogram too (parse_webapp_init_data). On top, only
what aiogram leaves to us: `auth_date` must be recent (max_age_seconds), and the input small.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from aiogram.utils.web_app import check_webapp_signature, parse_webapp_init_data
from pydantic import ValidationError

MAX_INIT_DATA = 8192  # Telegram's initData is a few hundred bytes
FUTURE_SKEW_SECONDS = 60  # clocks differ a little; more than this ahead is forged or broken


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


def validate_init_data(init_data: str, bot_token: str, *, now: datetime, max_age_seconds: int) -> MiniAppUser:
    """The Mini App user, when initData is signed for this bot and recent; else InitDataRejected."""
    if not init_data or len(init_data) > MAX_INIT_DATA:
        raise InitDataRejected("malformed")
    if not check_webapp_signature(bot_token, init_data):
        raise InitDataRejected("bad_hash")
    try:
        data = parse_webapp_init_data(init_data)
    except (ValidationError, ValueError, TypeError):
        raise InitDataRejected("malformed") from None
    if data.user is None:
        raise InitDataRejected("malformed")
    auth_date = int(data.auth_date.timestamp())
    age = now.timestamp() - auth_date
    if age > max_age_seconds:
        raise InitDataRejected("too_old")
    if age < -FUTURE_SKEW_SECONDS:
        raise InitDataRejected("from_future")
    return MiniAppUser(id=data.user.id, language_code=data.user.language_code, auth_date=auth_date)
