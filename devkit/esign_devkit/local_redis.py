"""The Redis the playgrounds use: the configured one when it answers, else an in-process store
(fakeredis, which runs the bot's Lua scripts with lupa), so the playground needs no server."""
from __future__ import annotations

from collections.abc import Callable

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from bot.runtime.redis_client import redis_from_url


async def open_redis(url: str, say: Callable[[str], None], *, fresh: bool = False) -> aioredis.Redis:
    """The configured Redis when it answers; otherwise (or when `fresh`) an in-process one."""
    if fresh:
        import fakeredis

        say("Recording: using a fresh in-process store, so that the replay starts from the same state.")
        return fakeredis.aioredis.FakeRedis(decode_responses=True)
    client = redis_from_url(url, socket_connect_timeout=1)
    try:
        await client.ping()
        say(f"Redis: {url} (conversations and orders persist)")
        return client
    except (RedisError, OSError):
        await client.aclose()
    import fakeredis

    say(f"Redis at {url} does not answer: using an in-process store; nothing will persist.")
    return fakeredis.aioredis.FakeRedis(decode_responses=True)
