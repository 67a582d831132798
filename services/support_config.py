"""Customer-service settings (`config/support.toml`) and working hours.

Working hours are read in the configured time zone (Asia/Shanghai by default); the clock is
UTC everywhere else. `WorkingHours.is_open(now)` and `next_open(now)` answer whether an agent
is on duty and when one will be.
"""
from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta, timezone, tzinfo
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from services.config_files import load_toml_model

DEFAULT_SUPPORT_PATH = Path(__file__).resolve().parent.parent / "config" / "support.toml"
CLOCK_TIME = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$|^24:00$")
# Asia/Shanghai has had no daylight saving since 1991: a fixed offset is exact where the
# system has no time-zone database.
FIXED_ZONES = {"Asia/Shanghai": timezone(timedelta(hours=8), "CST")}
LOOKAHEAD_DAYS = 60  # next_open looks this far for an opening (holidays included)


class SupportConfigError(ValueError):
    """config/support.toml is invalid; the message names the field."""


def _minutes(value: Any) -> int:
    """"09:00" (or a TOML time) → minutes after midnight; "24:00" → 1440."""
    if isinstance(value, time):
        return value.hour * 60 + value.minute
    if not isinstance(value, str) or not CLOCK_TIME.match(value):
        raise ValueError('a time of day is written "HH:MM", from "00:00" to "24:00"')
    hours, minutes = value.split(":")
    return int(hours) * 60 + int(minutes)


class HoursBlock(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")

    days: list[int] = Field(min_length=1)
    open: int  # minutes after midnight
    close: int

    @field_validator("open", "close", mode="before")
    @classmethod
    def _clock(cls, value: Any) -> int:
        return _minutes(value)

    @field_validator("days")
    @classmethod
    def _weekdays(cls, days: list[int]) -> list[int]:
        if any(d < 1 or d > 7 for d in days) or len(set(days)) != len(days):
            raise ValueError("days are distinct ISO weekdays, 1 (Monday) to 7 (Sunday)")
        return sorted(days)

    @model_validator(mode="after")
    def _ordered(self) -> HoursBlock:
        if self.open >= self.close:
            raise ValueError("open must be earlier than close")
        return self


class Flood(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")

    messages: int = Field(gt=0)
    seconds: int = Field(gt=0, le=86400)


class ContactDetails(BaseModel):
    """How customers reach the service when the bot has no staff group to hand them to
    (STAFF_CHAT_ID unset): shown on 联系客服 and 购买咨询 instead of an invitation to write."""

    model_config = ConfigDict(strict=True, extra="forbid")
    page: str = Field(default="", pattern=r"^(https://\S+)?$")  # the vendor's 联系我们 page
    phone: str = Field(default="", max_length=40)
    email: str = Field(default="", max_length=100, pattern=r"^([^@\s]+@[^@\s]+)?$")

    @model_validator(mode="after")
    def _something(self) -> ContactDetails:
        if not (self.page or self.phone or self.email):
            raise ValueError("give at least one of page, phone or email: customers must have a way to reach you")
        return self


class SupportConfig(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")

    timezone: str = "Asia/Shanghai"
    staff_language: str = Field(default="zh", pattern=r"^(zh|en)$")
    reply_minutes: int = Field(default=10, gt=0, le=7 * 24 * 60)
    reopen_minutes: int = Field(default=30, ge=0, le=30 * 24 * 60)
    transcript_max: int = Field(default=200, gt=0, le=10_000)
    transcript_on_claim: int = Field(default=20, ge=0, le=200)
    history_max: int = Field(default=50, gt=0, le=1000)
    flood: Flood = Flood(messages=20, seconds=60)
    hours: list[HoursBlock] = Field(min_length=1)
    closed_dates: list[date] = Field(default_factory=list)
    contact: ContactDetails = ContactDetails(page="https://cloud.tencent.com/document/product/1323/59638")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, name: str) -> str:
        zone_of(name)
        return name

    @field_validator("closed_dates", mode="before")
    @classmethod
    def _dates(cls, values: Any) -> Any:
        if not isinstance(values, list):
            return values
        parsed = []
        for value in values:
            if isinstance(value, str):
                try:
                    value = date.fromisoformat(value)
                except ValueError:
                    raise ValueError(f'{value!r} is not a date written "YYYY-MM-DD"') from None
            parsed.append(value)
        return parsed

    @property
    def hours_of_work(self) -> WorkingHours:
        return WorkingHours(self)


def zone_of(name: str) -> tzinfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        if name in FIXED_ZONES:
            return FIXED_ZONES[name]
        raise ValueError(f"unknown time zone {name!r} (an IANA name such as Asia/Shanghai)") from None


class WorkingHours:
    def __init__(self, config: SupportConfig) -> None:
        self.config = config
        self.zone = zone_of(config.timezone)

    def local(self, moment: datetime) -> datetime:
        return moment.astimezone(self.zone)

    def _blocks(self, day: date) -> list[tuple[int, int]]:
        if day in self.config.closed_dates:
            return []
        return sorted((b.open, b.close) for b in self.config.hours if day.isoweekday() in b.days)

    def is_open(self, now: datetime) -> bool:
        local = self.local(now)
        minute = local.hour * 60 + local.minute
        return any(start <= minute < end for start, end in self._blocks(local.date()))

    def next_open(self, now: datetime) -> datetime | None:
        """`now` when open; otherwise the next opening (UTC); None if none in the look-ahead."""
        if self.is_open(now):
            return now
        local = self.local(now)
        minute = local.hour * 60 + local.minute
        for offset in range(LOOKAHEAD_DAYS + 1):
            day = local.date() + timedelta(days=offset)
            for start, _ in self._blocks(day):
                if offset == 0 and start <= minute:
                    continue
                opening = datetime.combine(day, time(0), tzinfo=self.zone) + timedelta(minutes=start)
                return opening.astimezone(UTC)
        return None


def load_support_config(path: Path | str = DEFAULT_SUPPORT_PATH) -> SupportConfig:
    """Read and validate config/support.toml; a problem raises SupportConfigError naming the field."""
    return load_toml_model(path, SupportConfig, SupportConfigError, "customer-service config")
