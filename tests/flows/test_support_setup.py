"""Setting the help desk up (F11): STAFF_CHAT_ID must be a forum supergroup the bot administers
with topic rights; the start-up says so when it is not."""
import logging

from esign_devkit.testing.harness import BotHarness

from bot.flows.support import staff_chat_problem
from config.settings import Settings


async def test_F11_the_harness_staff_group_is_usable(esign_harness):
    assert await staff_chat_problem(esign_harness.bot, esign_harness.staff_chat_id) is None


async def test_F11_a_staff_chat_that_is_no_forum_or_unknown_is_named(esign_harness):
    esign_harness.telegram.add_chat(-100111, title="No topics")
    problem = await staff_chat_problem(esign_harness.bot, -100111)
    assert "not a forum supergroup" in problem and "Topics" in problem
    problem = await staff_chat_problem(esign_harness.bot, -100222)
    assert "cannot reach STAFF_CHAT_ID -100222" in problem and "chat not found" in problem


async def test_F11_startup_logs_an_unusable_staff_chat(redis, clock, caplog):
    settings = Settings(_env_file=None, bot_token=None, code_secret="test-secret", staff_chat_id=-100333)
    harness = BotHarness(redis, clock=clock, settings=settings, staff_group=False)  # -100333 does not exist
    try:
        with caplog.at_level(logging.ERROR):
            await harness.dp.emit_startup(bot=harness.bot, **harness.dp.workflow_data)
        assert any("support.staff_chat_unusable" in r.getMessage() and "-100333" in r.getMessage()
                   for r in caplog.records)
        await harness.dp.emit_shutdown(bot=harness.bot, **harness.dp.workflow_data)
    finally:
        await harness.close()
