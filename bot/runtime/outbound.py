"""Outbound limits for the Bot API: wait out a 429 `retry_after` and try again, pace messages
to one chat to about one a second after a short burst, and once Telegram has answered a new
message with 429, pace new messages across all chats to under its about 30 a second per bot
for a while. Without that, thousands of buyers at once (after a broadcast) would each be
answered 429 until their retries ran out, and their replies would be lost.

A 429 means the message was not sent, so sending it again after the wait neither drops
nor doubles it. Attached to the production bot's session by the runner.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiogram import Bot
from aiogram.client.session.middlewares.base import BaseRequestMiddleware, NextRequestMiddlewareType
from aiogram.exceptions import TelegramRetryAfter
from aiogram.methods import Response, TelegramMethod
from aiogram.methods.base import TelegramType

from bot.runtime.metrics import TELEGRAM_429, TELEGRAM_429_SECONDS

log = logging.getLogger(__name__)

# Methods that put a new message into a chat; edits and answers are not paced.
SENDS = frozenset({
    "sendMessage", "sendInvoice", "copyMessage", "forwardMessage", "sendPhoto", "sendDocument",
    "sendVoice", "sendVideo", "sendSticker", "sendAudio", "sendAnimation", "sendMediaGroup",
})


@dataclass
class _Bucket:
    tokens: float
    updated: float
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class OutboundLimits(BaseRequestMiddleware):
    def __init__(
        self,
        *,
        per_chat_rate: float = 1.0,  # messages a second to one chat, sustained
        per_chat_burst: int = 3,  # sent at once before pacing starts
        per_bot_rate: float = 25.0,  # new messages a second across chats once Telegram said 429
        per_bot_burst: int = 5,  # so that no one second holds more than about 30
        paced_for: float = 60.0,  # seconds the bot-wide pacing lasts after the last 429
        max_retries: int = 5,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate, self.burst, self.max_retries = per_chat_rate, per_chat_burst, max_retries
        self._sleep, self._clock = sleep, clock
        self._buckets: dict[Any, _Bucket] = {}
        self.bot_rate, self.bot_burst = per_bot_rate, per_bot_burst
        self._bot_bucket = _Bucket(tokens=per_bot_burst, updated=clock())
        self.paced_for = paced_for
        self.paced_until = float("-inf")

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Response[TelegramType]:
        chat_id = getattr(method, "chat_id", None)
        sends = method.__api_method__ in SENDS and chat_id is not None
        if sends:
            await self._take(chat_id)
        for attempt in range(self.max_retries + 1):
            if sends and self._clock() < self.paced_until:
                await self._wait(self._bot_bucket, self.bot_rate, self.bot_burst)
            try:
                return await make_request(bot, method)
            except TelegramRetryAfter as exc:
                TELEGRAM_429.labels(method.__api_method__).inc()
                if sends:
                    self.paced_until = self._clock() + exc.retry_after + self.paced_for
                if attempt == self.max_retries:
                    raise
                TELEGRAM_429_SECONDS.inc(exc.retry_after)
                log.warning("telegram.retry_after method=%s seconds=%s", method.__api_method__, exc.retry_after)
                await self._sleep(exc.retry_after)
        raise AssertionError("unreachable")

    async def _take(self, chat_id: Any) -> None:
        """Token bucket per chat: `burst` at once, then `rate` a second."""
        bucket = self._buckets.setdefault(chat_id, _Bucket(tokens=self.burst, updated=self._clock()))
        await self._wait(bucket, self.rate, self.burst)
        if len(self._buckets) > 10_000:  # forget idle chats
            idle = [cid for cid, b in self._buckets.items() if b.tokens >= self.burst and not b.lock.locked()]
            for cid in idle:
                del self._buckets[cid]

    async def _wait(self, bucket: _Bucket, rate: float, burst: int) -> None:
        """Take a token: `burst` at once, then `rate` a second (waiters in turn)."""
        async with bucket.lock:
            now = self._clock()
            bucket.tokens = min(burst, bucket.tokens + (now - bucket.updated) * rate)
            bucket.updated = now
            if bucket.tokens < 1:
                await self._sleep((1 - bucket.tokens) / rate)
                bucket.tokens, bucket.updated = 1.0, self._clock()
            bucket.tokens -= 1
