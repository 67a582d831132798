"""One way to open Redis for the bot, the playground, the tools and the tests.

redis-py's default pool raises MaxConnectionsError past 100 connections; under a burst of
users every waiting update would fail. A blocking pool makes them wait for a free connection
instead (up to `timeout`), which is what a busy bot needs.
"""
from __future__ import annotations

import redis.asyncio as aioredis

DEFAULT_MAX_CONNECTIONS = 64


def redis_from_url(url: str, *, max_connections: int = DEFAULT_MAX_CONNECTIONS, timeout: float = 10,
                   **options) -> aioredis.Redis:
    pool = aioredis.BlockingConnectionPool.from_url(
        url, max_connections=max_connections, timeout=timeout, decode_responses=True, **options
    )
    return aioredis.Redis(connection_pool=pool)
