"""One way to open Redis for the bot, the playground, the tools and the tests.

redis-py's default pool raises MaxConnectionsError past 100 connections; under a burst of
users every waiting update would fail. A blocking pool makes them wait for a free connection
instead (up to `timeout`), which is what a busy bot needs.
"""
from __future__ import annotations

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError, TimeoutError

DEFAULT_MAX_CONNECTIONS = 64


def redis_from_url(url: str, *, max_connections: int = DEFAULT_MAX_CONNECTIONS, timeout: float = 10,
                   **options) -> aioredis.Redis:
    """A client on a blocking pool. Connections idle for 2 s are checked before use, so after
    Redis restarts a stale one is replaced instead of failing the update that drew it; a Redis
    that hangs fails a call after 5 s instead of holding the user's lock for ever."""
    settings = {
        "socket_connect_timeout": 3, "socket_timeout": 5, "health_check_interval": 2,
        # redis-py retries nothing by default: a connection the server closed while it was down
        # would fail one update after Redis is back. Our writes are idempotent, so retrying is safe.
        "retry": Retry(ExponentialBackoff(cap=0.5, base=0.05), 3),
        "retry_on_error": [ConnectionError, TimeoutError],
        **options,
    }
    pool = aioredis.BlockingConnectionPool.from_url(
        url, max_connections=max_connections, timeout=timeout, decode_responses=True, **settings
    )
    return aioredis.Redis(connection_pool=pool)
