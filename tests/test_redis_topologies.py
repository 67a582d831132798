"""Redis Sentinel and Redis Cluster URLs (bot/runtime/redis_client.py, services/keys.py).

- REDIS_URL is read for each topology, and a URL it cannot read is refused with the reason.
- Every key carries a hash tag, so each operation keeps to one Cluster slot: the ledger's
  keys share `{esign}`, a conversation's keys share `fsm:{<bot>:<chat>:<user>}`.
- On a private 3-shard Redis Cluster and a private Sentinel setup (master, replica, Sentinel;
  never the shared server), the Redis-touching tests (conversations, orders, codes, the help
  desk, a purchase through the dispatcher, a killed `python -m bot run`) pass unchanged.
- On the cluster, conversations spread over the shards while the ledger stays in its slot.
- A Sentinel failover in the middle of a purchase loses nothing: the bot follows the new
  master and the order is paid and bound once.
"""
from __future__ import annotations

import asyncio
import inspect
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import pytest_asyncio
from aiogram.fsm.storage.base import StorageKey
from esign_devkit.testing.harness import BotHarness
from esign_devkit.testing.private_redis import PrivateCluster, PrivateSentinel
from redis.asyncio.cluster import RedisCluster
from redis.crc import key_slot

from bot.runtime.redis_client import SentinelRedis, redis_from_url
from bot.state.conversations import TaggedKeyBuilder
from services import keys
from services.clock import FixedClock
from services.orders import OrderStatus
from tests.flows.steps import to_confirmation

ROOT = Path(__file__).resolve().parent.parent
needs_redis_server = pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs the redis-server binary")
# The tests that talk to Redis, run again on each topology (the bench and the load test count
# round trips on a single server's connections, and the browser tests add nothing here).
# One module for each way the topology matters: conversations (their own hash slot, the lock,
# dedup), the ledger's multi-key transactions (orders, binding), the codes' and the help desk's
# multi-key scripts, a purchase through the dispatcher and the money checks, and a process
# killed between a payment and its confirmation.
SUITE = ["tests/test_conversations.py", "tests/test_orders.py", "tests/test_codes.py", "tests/test_support_service.py",
         "tests/flows/test_buy_advanced.py", "tests/flows/test_money_safety.py",
         "tests/test_process.py::test_a_hard_kill_between_payment_and_its_confirmation_applies_it_once"]
PHONE = "+8613800138000"


# --- reading REDIS_URL -----------------------------------------------------------------------

async def test_each_topology_has_its_url():
    single = redis_from_url("redis://127.0.0.1:6379/3")
    assert single.connection_pool.connection_kwargs["db"] == 3

    sentinel = redis_from_url("redis+sentinel://:secret@10.0.0.1:26379,10.0.0.2/esign/2?sentinel_password=s2")
    assert isinstance(sentinel, SentinelRedis)
    assert sentinel.connection_pool.service_name == "esign"
    assert sentinel.connection_pool.connection_kwargs["db"] == 2
    assert sentinel.connection_pool.connection_kwargs["password"] == "secret"
    assert [(c.connection_pool.connection_kwargs["host"], c.connection_pool.connection_kwargs["port"])
            for c in sentinel.sentinel_manager.sentinels] == [("10.0.0.1", 26379), ("10.0.0.2", 26379)]
    assert sentinel.sentinel_manager.sentinels[0].connection_pool.connection_kwargs["password"] == "s2"

    cluster = redis_from_url("redis+cluster://:pw@10.0.0.1:7000,10.0.0.2:7001")
    assert isinstance(cluster, RedisCluster)
    assert [(n.host, n.port) for n in cluster.startup_nodes] == [("10.0.0.1", 7000), ("10.0.0.2", 7001)]
    for client in (single, sentinel, cluster):
        await client.aclose()


@pytest.mark.parametrize("url, reason", [
    ("redis+sentinel://10.0.0.1:26379", "names the service"),
    ("redis+sentinel://10.0.0.1:26379/esign/zero", "names the service"),
    ("redis+cluster://10.0.0.1:7000/3", "database 0 only"),
    ("redis+cluster://10.0.0.1:seven", "cannot read the host"),
    ("http://10.0.0.1", "scheme"),
])
def test_a_url_it_cannot_read_is_refused_with_the_reason(url, reason):
    with pytest.raises(ValueError, match=reason):
        redis_from_url(url)


# --- hash tags --------------------------------------------------------------------------------

def _every_ledger_key() -> list[str]:
    made = []
    for _name, function in inspect.getmembers(keys, inspect.isfunction):
        if function.__module__ != keys.__name__:
            continue
        made.append(function(*[7] * len(inspect.signature(function).parameters)))
    return made


def test_every_ledger_key_is_in_the_ledger_slot():
    made = _every_ledger_key()
    assert len(made) > 40
    assert all(key.startswith("{esign}:") for key in made), [k for k in made if not k.startswith("{esign}:")]
    assert {key_slot(key.encode()) for key in made} == {key_slot(b"{esign}")}


def test_a_conversations_keys_share_a_slot_and_conversations_spread():
    build = TaggedKeyBuilder()
    one = StorageKey(bot_id=42, chat_id=7, user_id=7)
    own = [build.build(one, part) for part in ("state", "data", "lock")] + [build.seen(one, 123)]
    assert own[0] == "fsm:{42:7:7}:state" and own[3] == "fsm:{42:7:7}:seen:123"
    assert len({key_slot(k.encode()) for k in own}) == 1
    others = {key_slot(build.build(StorageKey(bot_id=42, chat_id=u, user_id=u), "state").encode()) for u in range(100)}
    assert len(others) > 90  # a hundred conversations, nearly a hundred slots


# --- the suite on each topology -----------------------------------------------------------------

@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def cluster(tmp_path_factory):
    servers = PrivateCluster(tmp_path_factory.mktemp("cluster"))
    await servers.start()
    yield servers
    await servers.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def sentinel(tmp_path_factory):
    servers = PrivateSentinel(tmp_path_factory.mktemp("sentinel"))
    await servers.start()
    yield servers
    await servers.stop()


async def _run_suite(url: str) -> str:
    """The SUITE in a pytest of its own on `url`; its summary line, or an AssertionError."""
    run = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x", *SUITE, cwd=ROOT,
        env={**os.environ, "ESIGN_TEST_REDIS_URL": url}, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    output, _ = await asyncio.wait_for(run.communicate(), timeout=900)
    tail = "\n".join(output.decode(errors="replace").splitlines()[-40:])
    assert run.returncode == 0, f"the suite failed on {url}:\n{tail}"
    assert " passed" in tail and " failed" not in tail
    return f"{url}: {tail.splitlines()[-1]}"


@needs_redis_server
@pytest.mark.asyncio(loop_scope="module")
async def test_the_redis_suite_passes_on_a_cluster_and_behind_sentinel(cluster, sentinel):
    # Side by side: each run mostly waits on its own Redis servers, and the two take one core each.
    for summary in await asyncio.gather(_run_suite(cluster.url), _run_suite(sentinel.url(db=0))):
        print(summary)


@needs_redis_server
@pytest.mark.asyncio(loop_scope="module")
async def test_on_a_cluster_conversations_spread_and_the_ledger_keeps_its_slot(cluster):
    client = redis_from_url(cluster.url)
    harness = BotHarness(client, clock=FixedClock())
    try:
        await client.flushdb()
        await harness.enterprise("深圳示例科技有限公司", members={PHONE: "super_admin"})
        for _ in range(12):
            await harness.user(lang="zh").send("/start")
        shards: dict[int, list[str]] = {}
        for node in cluster.nodes:  # each shard asked on its own
            direct = node.client()
            shards[node.port] = await direct.keys("*")
            await direct.aclose()
        holding_sessions = [name for name, names in shards.items() if any(k.startswith("fsm:") for k in names)]
        holding_ledger = [name for name, names in shards.items() if any(k.startswith("{esign}:") for k in names)]
        assert len(holding_sessions) >= 2, shards
        assert len(holding_ledger) == 1, shards
    finally:
        await client.flushdb()
        await harness.close()


@needs_redis_server
@pytest.mark.asyncio(loop_scope="module")
async def test_a_sentinel_failover_mid_purchase_loses_nothing(sentinel):
    client = redis_from_url(sentinel.url(db=1))
    harness = BotHarness(client, clock=FixedClock())
    try:
        await client.flushdb()
        ent = await harness.enterprise("深圳示例科技有限公司", members={PHONE: "member"})
        buyer = harness.user(lang="zh", phone=PHONE)
        await to_confirmation(harness, buyer)
        before = await sentinel.master_port()

        assert await sentinel.failover() != before  # the replica is the master now
        await buyer.tap("提交订单")
        screen = await buyer.pay()
        assert "支付成功" in screen.text
        await buyer.tap("立即绑定")
        await buyer.tap("深圳示例科技有限公司")
        screen = await buyer.tap("确认绑定")
        assert "绑定成功" in screen.text

        [order] = await harness.orders.list_for_user(buyer.id)
        assert order.status is OrderStatus.BOUND and order.enterprise_id == ent.id
        assert (await harness.enterprises.get(ent.id)).edition == "advanced"
        assert harness.unanswered_queries() == []
    finally:
        await client.flushdb()
        await harness.close()


@pytest.mark.parametrize("url", ["redis+cluster://127.0.0.1:1", "redis+sentinel://127.0.0.1:1/esign/0"])
def test_a_topology_that_does_not_answer_is_one_clear_line(url):
    run = subprocess.run([sys.executable, "-m", "bot", "admin", "list"], cwd=ROOT, capture_output=True, text=True,
                         env={**os.environ, "REDIS_URL": url}, timeout=60)
    assert run.returncode == 2
    assert run.stderr.startswith(f"Redis at {url} does not answer: ") and "Traceback" not in run.stderr
