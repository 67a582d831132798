"""The fixtures (`redis`, `clock`, `bot_harness`) come from the package's pytest plugin,
bot/testing/pytest_plugin.py, which the project's tests use like any tester would."""
from bot.testing.pytest_plugin import redis_url_for_tests

TEST_REDIS_URL = redis_url_for_tests()
