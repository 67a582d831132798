"""Two bot processes in webhook mode on one Redis, fed interleaved updates for the same
buyers (round-robin, a share delivered to both at once as a Telegram retry would be): every
purchase completes once, with no order lost or doubled. Real sockets and processes
(devkit/esign_devkit/loadtest.py); no speed is asserted."""
from esign_devkit.loadtest import loadtest

from tests.conftest import TEST_REDIS_URL


async def test_two_instances_on_one_redis_complete_every_flow_once(redis):
    result = await loadtest(users=10, processes=2, redis_url=TEST_REDIS_URL, duplicates=0.2)
    assert result["processes"] == 2 and result["duplicate_deliveries"] > 0
    assert result["http_errors"] == 0, result["first_http_error"]
    assert result["bot_error_lines"] == 0, result["first_bot_errors"]
    assert result["buyers_stuck"] == 0, result["first_stuck"]
    orders = result["orders"]
    assert (orders["buyers"], orders["bound_once"], orders["lost"], orders["doubled"]) == (10, 10, 0, 0), orders
