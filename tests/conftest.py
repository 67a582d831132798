"""The project's own tests use the flow-testing kit's pytest plugin
(devkit/esign_devkit/testing/pytest_plugin.py) as any tester would. Their Redis database is
$ESIGN_TEST_REDIS_URL: scripts/test.sh sets it, and a run by hand takes database 8 of the
local server (emptied before and after each test; under pytest-xdist, worker N takes 8 + N).
`redis` and `clock` are this suite's short names for the plugin's `esign_redis` and `esign_clock`."""
import os

import pytest

os.environ.setdefault("ESIGN_TEST_REDIS_URL", "redis://127.0.0.1:6379/8")
pytest_plugins = ["esign_devkit.testing.pytest_plugin"]

from esign_devkit.testing.databases import given_redis_url  # noqa: E402 (after the default above)

TEST_REDIS_URL = given_redis_url()


@pytest.fixture
def redis(esign_redis):
    return esign_redis


@pytest.fixture
def clock(esign_clock):
    return esign_clock


# The files that take longest (they start processes or private Redis servers) go first, so that
# under pytest-xdist (--dist loadfile) they run beside the many short ones instead of alone at
# the end of the run.
LONGEST_FIRST = [
    "test_redis_topologies.py", "test_money_transport.py", "test_process.py", "test_redis_outage.py",
    "test_bench.py", "test_order_state_machine.py", "test_fuzz_updates.py", "test_web_fuzz.py",
    "test_attacks_on_the_process.py", "test_two_instances.py", "test_refunds_cli.py",
]


def pytest_collection_modifyitems(items):
    rank = {name: place for place, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: the rest keep their order
