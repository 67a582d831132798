"""One way to open Redis for the bot, the playground, the tools, the tests and the bench.

redis-py's default pool raises MaxConnectionsError past 100 connections, and its
BlockingConnectionPool lets a newcomer take a freed connection before the callers already
waiting (a few updates then wait for seconds under a burst). FairConnectionPool keeps the
bound and serves waiters first come, first served.
"""
from __future__ import annotations

import asyncio
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio import ConnectionPool
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError, TimeoutError

DEFAULT_MAX_CONNECTIONS = 64


class FairConnectionPool(ConnectionPool):
    """At most `max_connections` connections; callers beyond them wait their turn in order
    (asyncio.Semaphore is FIFO). 300 tasks on 64 connections: p99 0.35 s, against 1.6 s on
    BlockingConnectionPool (docs/performance.md)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._slots = asyncio.Semaphore(self.max_connections)

    async def get_connection(self, *args: Any, **kwargs: Any) -> Any:
        await self._slots.acquire()
        try:
            return await super().get_connection(*args, **kwargs)
        except BaseException:
            self._slots.release()
            raise

    async def release(self, connection: Any) -> None:
        try:
            await super().release(connection)
        finally:
            self._slots.release()


def client_options(**overrides: Any) -> dict[str, Any]:
    """Connections idle for 2 s are checked before use, so after Redis restarts a stale one is
    replaced instead of failing the update that drew it; a Redis that hangs fails a call after
    5 s instead of holding the user's lock for ever."""
    return {
        "socket_connect_timeout": 3, "socket_timeout": 5, "health_check_interval": 2,
        # redis-py retries nothing by default: a connection the server closed while it was down
        # would fail one update after Redis is back. Our writes are idempotent, so retrying is safe.
        "retry": Retry(ExponentialBackoff(cap=0.5, base=0.05), 3),
        "retry_on_error": [ConnectionError, TimeoutError],
        "decode_responses": True,
        **overrides,
    }


def redis_from_url(url: str, *, max_connections: int = DEFAULT_MAX_CONNECTIONS, **options: Any) -> aioredis.Redis:
    pool = FairConnectionPool.from_url(url, max_connections=max_connections, **client_options(**options))
    return aioredis.Redis(connection_pool=pool)
