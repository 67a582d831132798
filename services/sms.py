"""Sending SMS: the gateway interface, a console stand-in for local runs, and an HTTP provider adapter."""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

import aiohttp

from services.clock import Clock, SystemClock
from services.phones import mask_phone


class SmsDeliveryError(RuntimeError):
    """The provider did not accept the message (non-2xx, timeout, connection error)."""


@runtime_checkable
class SmsGateway(Protocol):
    async def send(self, phone: str, text: str) -> None: ...


@dataclass(frozen=True)
class SentSms:
    phone: str  # full E.164: kept in memory only, for the test harness
    text: str
    at: datetime


_CODE = re.compile(r"(?<!\d)\d{6}(?!\d)")


class ConsoleSms:
    """Prints one line per message (phone masked) and keeps an in-memory outbox."""

    def __init__(self, clock: Clock | None = None) -> None:
        self.clock = clock or SystemClock()
        self.outbox: list[SentSms] = []

    async def send(self, phone: str, text: str) -> None:
        self.outbox.append(SentSms(phone, text, self.clock.now()))
        print(f"SMS to {mask_phone(phone)}: {text}", flush=True)

    def last_to(self, phone: str) -> str | None:
        for sms in reversed(self.outbox):
            if sms.phone == phone:
                return sms.text
        return None

    def last_code(self, phone: str) -> str | None:
        """The last 6-digit run in the last text to `phone`."""
        text = self.last_to(phone)
        codes = _CODE.findall(text) if text else []
        return codes[-1] if codes else None


class HttpSmsGateway:
    """POSTs `{"phone", "text", "sign"}` as JSON with a bearer key; any non-2xx is a failure."""

    def __init__(self, url: str, api_key: str, sign_name: str, timeout: float = 5) -> None:
        if not url or not api_key:
            raise ValueError("http sms gateway needs url and api_key")
        self.url = url
        self.api_key = api_key
        self.sign_name = sign_name
        self.timeout = aiohttp.ClientTimeout(total=timeout)

    async def send(self, phone: str, text: str) -> None:
        payload = {"phone": phone, "text": text, "sign": self.sign_name}
        headers = {"Authorization": f"Bearer {self.api_key}"}
        # A session per message: SMS volume is tiny and there is no lifecycle to wire.
        try:
            async with (
                aiohttp.ClientSession(timeout=self.timeout) as session,
                session.post(self.url, json=payload, headers=headers) as resp,
            ):
                if not 200 <= resp.status < 300:
                    # Status only: the provider's body may echo the phone or the text.
                    raise SmsDeliveryError(f"sms provider answered {resp.status}")
        except TimeoutError:
            raise SmsDeliveryError("sms provider timed out") from None
        except aiohttp.ClientError as exc:
            raise SmsDeliveryError(f"sms provider unreachable: {type(exc).__name__}") from None


def build_sms_gateway(backend: str, **settings: Any) -> SmsGateway:
    """`console` (ignores provider settings; optional `clock`) or `http` (url, api_key, sign_name, timeout)."""
    name = backend.strip().lower()
    if name == "console":
        return ConsoleSms(clock=settings.get("clock"))
    if name == "http":
        missing = [k for k in ("url", "api_key", "sign_name") if not settings.get(k)]
        if missing:
            raise ValueError(f"sms backend 'http' needs {', '.join(missing)}")
        return HttpSmsGateway(
            url=settings["url"],
            api_key=settings["api_key"],
            sign_name=settings["sign_name"],
            timeout=float(settings.get("timeout") or 5),
        )
    raise ValueError(f"unknown sms backend: {backend!r}")
