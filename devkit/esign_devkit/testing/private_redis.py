"""Private redis-server processes for tests: one server, a Redis Cluster, a Sentinel setup.

Each runs on free ports of 127.0.0.1 with its files in a directory the caller gives (a
pytest tmp_path), and is killed by `stop()`. They never touch the shared server at 6379.
Needs the `redis-server` binary (Debian's redis-server package; scripts/test.sh installs it).
"""
from __future__ import annotations

import asyncio
import random
import socket
from pathlib import Path

import redis.asyncio as aioredis
from redis.exceptions import RedisError

CLUSTER_SLOTS = 16384


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _is_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def free_cluster_port() -> int:
    """A free port whose cluster bus port (10,000 higher, at most 65,535) is free as well."""
    while True:
        port = random.randint(20_000, 55_000)
        if _is_free(port) and _is_free(port + 10_000):
            return port


async def _wait_until(check, what: str, seconds: float = 10.0) -> None:
    for _ in range(int(seconds / 0.05)):
        try:
            if await check():
                return
        except (RedisError, OSError):  # not up yet
            pass
        await asyncio.sleep(0.05)
    raise AssertionError(f"{what} did not happen within {seconds:.0f} s")


def _client(port: int) -> aioredis.Redis:
    return aioredis.Redis(host="127.0.0.1", port=port, decode_responses=True, socket_connect_timeout=1)


class RedisProcess:
    """One redis-server (or Sentinel) process on a free port."""

    def __init__(self, directory: Path, *args: str, sentinel_conf: str | None = None,
                 port: int | None = None) -> None:
        self.port = port or free_port()
        self.directory = Path(directory) / str(self.port)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.args = args
        self.sentinel_conf = sentinel_conf
        self.proc: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> aioredis.Redis:
        return _client(self.port)

    async def start(self) -> None:
        if self.sentinel_conf is not None:  # Sentinel rewrites its config file: it must be its own
            conf = self.directory / "sentinel.conf"
            conf.write_text(f"port {self.port}\nbind 127.0.0.1\ndir {self.directory}\n{self.sentinel_conf}")
            command = ["redis-server", str(conf), "--sentinel"]
        else:
            command = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                       "--dir", str(self.directory), *self.args]
        self.proc = await asyncio.create_subprocess_exec(
            *command, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
        client = self.client()

        async def answers() -> bool:
            if self.proc.returncode is not None:
                raise AssertionError(f"redis-server on port {self.port} exited: {' '.join(command)}")
            return await client.ping()

        try:
            await _wait_until(answers, f"redis-server on port {self.port} answering")
        finally:
            await client.aclose()

    async def stop(self) -> None:
        if self.proc and self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()


class PrivateRedis(RedisProcess):
    """One server with an append-only file (it keeps its data across kill and start)."""

    def __init__(self, directory: Path) -> None:
        super().__init__(directory, "--appendonly", "yes", "--appendfsync", "always")

    async def kill(self) -> None:
        await self.stop()


class PrivateCluster:
    """A Redis Cluster of `shards` primaries, the slots split evenly, no replicas."""

    def __init__(self, directory: Path, shards: int = 3) -> None:
        self.nodes = [RedisProcess(directory, "--cluster-enabled", "yes", "--appendonly", "no",
                                   "--cluster-node-timeout", "2000", port=free_cluster_port())
                      for _ in range(shards)]

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{n.port}" for n in self.nodes)

    async def start(self) -> None:
        await asyncio.gather(*(n.start() for n in self.nodes))
        clients = [n.client() for n in self.nodes]
        try:
            step = CLUSTER_SLOTS // len(self.nodes)
            for i, client in enumerate(clients):
                last = CLUSTER_SLOTS - 1 if i == len(clients) - 1 else (i + 1) * step - 1
                await client.execute_command("CLUSTER", "ADDSLOTSRANGE", i * step, last)
            for node in self.nodes[1:]:
                await clients[0].execute_command("CLUSTER", "MEET", "127.0.0.1", node.port)

            async def all_ok() -> bool:
                for client in clients:
                    info = await client.execute_command("CLUSTER", "INFO")
                    text = info if isinstance(info, str) else str(info)
                    if "cluster_state:ok" not in text or f"cluster_known_nodes:{len(clients)}" not in text:
                        return False
                return True

            await _wait_until(all_ok, "the cluster agreeing on its slots", seconds=20)
        finally:
            for client in clients:
                await client.aclose()

    async def stop(self) -> None:
        await asyncio.gather(*(n.stop() for n in self.nodes))


class PrivateSentinel:
    """A master, one replica and one Sentinel watching them as `service`."""

    def __init__(self, directory: Path, service: str = "esign") -> None:
        self.service = service
        self.master = RedisProcess(directory, "--appendonly", "no")
        self.replica = RedisProcess(directory, "--appendonly", "no")
        self.sentinel = RedisProcess(directory, sentinel_conf="")

    def url(self, db: int = 0) -> str:
        return f"redis+sentinel://127.0.0.1:{self.sentinel.port}/{self.service}/{db}"

    async def start(self) -> None:
        await self.master.start()
        self.replica.args += ("--replicaof", "127.0.0.1", str(self.master.port))
        await self.replica.start()
        self.sentinel.sentinel_conf = (
            f"sentinel monitor {self.service} 127.0.0.1 {self.master.port} 1\n"
            f"sentinel down-after-milliseconds {self.service} 1000\n"
            f"sentinel failover-timeout {self.service} 5000\n")
        await self.sentinel.start()
        replica = self.replica.client()
        sentinel = self.sentinel.client()
        try:
            async def replicating() -> bool:
                return (await replica.info("replication")).get("master_link_status") == "up"

            async def replica_known() -> bool:
                return bool(await sentinel.execute_command("SENTINEL", "REPLICAS", self.service))

            await _wait_until(replicating, "the replica syncing with the master")
            await _wait_until(replica_known, "Sentinel discovering the replica")
        finally:
            await replica.aclose()
            await sentinel.aclose()

    async def master_port(self) -> int:
        sentinel = self.sentinel.client()
        try:
            _, port = await sentinel.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.service)
            return int(port)
        finally:
            await sentinel.aclose()

    async def failover(self) -> int:
        """Promote the replica (SENTINEL FAILOVER) and wait until it is the master; its port."""
        before = await self.master_port()
        sentinel = self.sentinel.client()
        try:
            await sentinel.execute_command("SENTINEL", "FAILOVER", self.service)
        finally:
            await sentinel.aclose()

        async def moved() -> bool:
            if await self.master_port() == before:
                return False
            client = _client(await self.master_port())
            try:
                return (await client.info("replication")).get("role") == "master"
            finally:
                await client.aclose()

        await _wait_until(moved, "the failover", seconds=20)
        return await self.master_port()

    async def stop(self) -> None:
        await asyncio.gather(self.sentinel.stop(), self.replica.stop(), self.master.stop())
