"""Process settings from the environment (and an optional `.env`). Secrets are SecretStr."""
from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.catalog import DEFAULT_CATALOG_PATH

TELEGRAM_API = "https://api.telegram.org"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    bot_token: SecretStr | None = None
    # A local Bot API server (or a stand-in) is used by pointing this elsewhere.
    telegram_api_base: str = TELEGRAM_API
    redis_url: str = "redis://127.0.0.1:6379/0"
    # Telegram Payments provider token (the provider's, set in @BotFather). Empty: the
    # sandbox, which only the local fake Telegram accepts.
    payment_provider_token: SecretStr = SecretStr("")
    sms_backend: Literal["console", "http"] = "console"
    sms_api_url: str | None = None
    sms_api_key: SecretStr | None = None
    sms_sign_name: str = "腾讯电子签"
    # Keys the HMAC of stored SMS codes. Set it in production; the default only suits a laptop.
    code_secret: SecretStr = SecretStr("local-development-only")

    # Webhook mode: set WEBHOOK_URL (public https base); otherwise the bot long-polls.
    webhook_url: str | None = None
    webhook_path: str = "/telegram/webhook"
    webhook_secret: SecretStr | None = None
    web_host: str = "127.0.0.1"
    web_port: int = Field(default=8080, ge=1, le=65535)

    # Where purchases the chat cannot take are finished (R2, R4): the vendor's web purchase page.
    web_purchase_url: str = "https://qian.tencent.com/#/pricing"

    catalog_path: Path = DEFAULT_CATALOG_PATH
    # Drop repeated update ids seen within this window.
    update_dedup_seconds: int = Field(default=24 * 3600, gt=0)
    # Conversations idle longer than this are forgotten.
    session_ttl_days: int = Field(default=30, gt=0)
    log_level: str = "INFO"
    # json: one JSON object per line (for log shippers); text: for reading in a terminal.
    log_format: Literal["json", "text"] = "json"
