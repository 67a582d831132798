"""Operations: the webhook is registered once across instances and restarts, and the
environment-variable table in docs/deploy.md is the one read off config/settings.py."""
from pathlib import Path

from esign_devkit.settings_table import markdown_table

from bot.runtime.runner import register_webhook_once
from config.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


async def test_the_webhook_is_registered_once_not_by_every_instance_on_every_start(esign_harness):
    settings = Settings(_env_file=None, webhook_url="https://bot.example.com")
    instances = [esign_harness.dp, esign_harness.dp]  # two replicas, same Redis, same bot
    registered = [await register_webhook_once(dp, esign_harness.bot, settings, "s3cret") for dp in instances]
    assert registered == [True, False]
    assert len(esign_harness.telegram.calls_of("setWebhook")) == 1
    # A new secret (or URL) is registered again, once.
    assert await register_webhook_once(esign_harness.dp, esign_harness.bot, settings, "rotated")
    assert not await register_webhook_once(esign_harness.dp, esign_harness.bot, settings, "rotated")
    assert [c.params["secret_token"] for c in esign_harness.telegram.calls_of("setWebhook")] == ["s3cret", "rotated"]


def test_docs_deploy_md_has_the_current_environment_table():
    text = (ROOT / "docs" / "deploy.md").read_text(encoding="utf-8")
    assert markdown_table() in text, "docs/deploy.md is stale: paste `python -m bot settings` into it"
