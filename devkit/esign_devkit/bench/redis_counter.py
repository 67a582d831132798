"""Counting what an update costs in Redis, for `python -m bot bench` and the load test.

A *round trip* is one write of one or more commands to the Redis socket followed by reading
their replies: a plain command (GET), a script call (EVALSHA), a pipeline or a MULTI…EXEC
block sent in one go each count one; `WATCH` in a redis-py transaction is a round trip of its
own, as are the reads made between it and MULTI. It is counted on the client, in
`Connection.send_packed_command` (every command and every pipeline goes through it once);
the handshake of a new connection (HELLO/SELECT/CLIENT SETINFO) is not counted.

The server's own view, `INFO commandstats`, is read too (`server_commands`): it counts
commands executed, including each command inside MULTI and inside scripts.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.connection import Connection

from bot.runtime.redis_client import DEFAULT_MAX_CONNECTIONS, FairConnectionPool, client_options


@dataclass
class RedisCounter:
    round_trips: int = 0
    commands: int = 0  # commands sent by the client (a pipeline of 3 counts 3; MULTI/EXEC count)
    handshakes: int = 0  # new connections

    def snapshot(self) -> tuple[int, int]:
        return self.round_trips, self.commands


class CountingConnection(Connection):
    def __init__(self, *args: Any, counter: RedisCounter | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._counter = counter or RedisCounter()
        self._handshaking = False

    async def on_connect_check_health(self, check_health: bool = True) -> None:
        self._handshaking = True
        self._counter.handshakes += 1
        try:
            await super().on_connect_check_health(check_health)
        finally:
            self._handshaking = False

    def pack_command(self, *args: Any) -> list[bytes]:
        if not self._handshaking:
            self._counter.commands += 1
        return super().pack_command(*args)

    async def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        if not self._handshaking:
            self._counter.round_trips += 1
        await super().send_packed_command(command, check_health)


DEFAULT_POOL = DEFAULT_MAX_CONNECTIONS  # as production


def counted_redis(url: str, counter: RedisCounter, max_connections: int = DEFAULT_POOL, **kwargs: Any) -> Redis:
    """A client with production's options (bot.runtime.redis_client.redis_from_url: timeouts, health
    checks, retries, decode_responses) on a FairConnectionPool, whose connections count round
    trips into `counter`."""
    pool = FairConnectionPool.from_url(url, connection_class=CountingConnection, counter=counter,
                                       max_connections=max_connections, **client_options(**kwargs))
    return Redis(connection_pool=pool)


async def server_command_calls(redis: Redis) -> int:
    """Commands the server has executed so far (all clients, all databases): INFO commandstats."""
    stats = await redis.info("commandstats")
    return sum(int(v["calls"]) for k, v in stats.items() if k.startswith("cmdstat_") and k != "cmdstat_info")
