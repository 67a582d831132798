"""docs/reliability.md, row 15: in production the bot warns at start-up when Redis keeps nothing on disk."""
import logging

from bot.runtime.runner import warn_if_not_durable


class Settings:  # only what the check reads
    def __init__(self, environment: str) -> None:
        self.environment = environment


async def test_production_warns_when_persistence_is_off(redis, caplog):
    appendonly = (await redis.config_get("appendonly"))["appendonly"]
    with caplog.at_level(logging.WARNING, logger="bot.runtime.runner"):
        await warn_if_not_durable(redis, Settings("production"))
        await warn_if_not_durable(redis, Settings("development"))
    warnings = [r.getMessage() for r in caplog.records if "redis.not_durable" in r.getMessage()]
    assert len(warnings) == (0 if appendonly == "yes" else 1)
