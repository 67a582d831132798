"""Process settings from the environment (and an optional `.env`). Secrets are SecretStr.

Every problem is reported at once, one line each naming the variable (bot.runtime.runner):
a payment provider chosen without its keys (config/payment_rails.py), and with
ENVIRONMENT=production every development stand-in (docs/security.md, "Production settings"):
each rule there is a small function in PRODUCTION_CHECKS that yields what is wrong.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.catalog import DEFAULT_CATALOG_PATH
from services.support_config import DEFAULT_SUPPORT_PATH

TELEGRAM_API = "https://api.telegram.org"
WEB_GATEWAYS = ("sandbox", "wechat", "alipay")
DEVELOPMENT_SECRET = "local-development-only"  # the default of the secrets below: refused in production
MIN_SECRET_LENGTH = 32  # CODE_SECRET in production: 256 bits of HMAC key, written as text
MIN_TOKEN_LENGTH = 16  # METRICS_TOKEN in production


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    # The bot's token from @BotFather; required by `python -m bot run`.
    bot_token: SecretStr | None = None
    # A local Bot API server (or a stand-in) is used by pointing this elsewhere.
    telegram_api_base: str = TELEGRAM_API
    # Sessions, orders, codes, enterprises, tickets. One server: redis:// or rediss:// (TLS) with a
    # db index; Sentinel: redis+sentinel://host:26379,host2:26379/<service>/<db>; Cluster:
    # redis+cluster://host:7000,host2:7001 (docs/deploy.md, "Redis").
    redis_url: str = "redis://127.0.0.1:6379/0"
    # Telegram Payments provider token (the provider's, set in @BotFather). Empty: the
    # sandbox, which only the local fake Telegram accepts.
    payment_provider_token: SecretStr = SecretStr("")
    # console: prints `SMS to <masked phone>: <text>`; http: posts to an SMS provider (below).
    sms_backend: Literal["console", "http"] = "console"
    # The http SMS backend: JSON {"phone", "text", "sign"} is posted here with a bearer key.
    sms_api_url: str | None = None
    # The bearer key of the http SMS backend.
    sms_api_key: SecretStr | None = None
    # The SMS signature (签名) the provider shows.
    sms_sign_name: str = "腾讯电子签"
    # Country calling codes SMS codes are sent to, as JSON; [] sends anywhere. Keeps SMS pumping
    # to premium-rate destinations off the bill (docs/security.md).
    sms_country_codes: tuple[int, ...] = (86, 852, 853, 886)
    # Keys the HMAC of stored SMS codes: at least 32 random characters in production, where the
    # development default is refused.
    code_secret: SecretStr = SecretStr(DEVELOPMENT_SECRET)

    # Webhook mode: set WEBHOOK_URL (public https base); otherwise the bot long-polls.
    webhook_url: str | None = None
    # The path of the webhook on the web app.
    webhook_path: str = "/telegram/webhook"
    # Telegram sends it in X-Telegram-Bot-Api-Secret-Token; unset: derived from the bot token.
    webhook_secret: SecretStr | None = None
    # Where the web app (webhook, checkout pages, payment notices, health, metrics) listens.
    web_host: str = "127.0.0.1"
    # Its port.
    web_port: int = Field(default=8080, ge=1, le=65535)
    # Prometheus scrapes /metrics of the web app with `Authorization: Bearer <METRICS_TOKEN>`;
    # without a token it is not served there. Required in production unless METRICS_PORT is set.
    metrics_token: SecretStr | None = None
    # With METRICS_PORT, /metrics is served only on a listener of its own, METRICS_HOST:METRICS_PORT
    # (keep it on an internal interface; METRICS_TOKEN, when set, is checked there too).
    metrics_host: str = "127.0.0.1"
    # The internal metrics listener's port; unset: /metrics is on the web app, behind the token.
    metrics_port: int | None = Field(default=None, ge=1, le=65535)
    # On SIGTERM or SIGINT, how long the updates and web requests in flight may take to finish
    # before they are cancelled (not confirmed to Telegram, so delivered again). Keep it below
    # the supervisor's stop timeout (systemd TimeoutStopSec, docker stop -t / stop_grace_period).
    shutdown_grace_seconds: float = Field(default=25.0, gt=0, le=600)

    # 企业认证指引: the vendor's guide shown wherever an unverified buyer is told to verify.
    enterprise_verification_guide_url: str = "https://cloud.tencent.com/document/product/1323/58758"

    # The business data: editions, prices, quotas, packs, services, the chat payment limit.
    catalog_path: Path = DEFAULT_CATALOG_PATH
    # Drop repeated update ids seen within this window.
    update_dedup_seconds: int = Field(default=24 * 3600, gt=0)
    # Conversations idle longer than this are forgotten.
    session_ttl_days: int = Field(default=30, gt=0)
    # DEBUG, INFO, WARNING or ERROR.
    log_level: str = "INFO"

    @field_validator("log_level")
    @classmethod
    def _log_level_is_a_level(cls, value: str) -> str:
        if not isinstance(logging.getLevelName(value.upper()), int):
            raise ValueError(f"{value!r} is not a logging level (DEBUG, INFO, WARNING, ERROR, CRITICAL)")
        return value
    # json: one JSON object per line (for log shippers); text: for reading in a terminal.
    log_format: Literal["json", "text"] = "json"

    # --- web checkout (F12): bot/web, services/checkout.py, services/payment_gateway.py --------
    # Where browsers reach the web app (checkout pages, payment notices); https also makes the
    # chat's 网页端购买 a Telegram Mini App (web_app) button.
    public_base_url: str = "http://127.0.0.1:8080"
    # A checkout link opens until its order is paid or this time has passed.
    checkout_link_ttl_minutes: int = Field(default=30, gt=0, le=7 * 24 * 60)
    # production refuses every development stand-in: the sandbox gateway, default secrets, the
    # console SMS backend, plain-http public URLs, an unprotected /metrics (docs/security.md).
    environment: Literal["development", "production"] = "development"
    # The web payment gateway(s): sandbox, wechat, alipay, or both providers as "wechat,alipay" (the
    # buyer chooses; the first is the default). Unset means "sandbox" (no real money) outside production.
    web_gateway: str | None = None
    # Key of the HMAC that signs payment notices (shared with the payment provider).
    payment_notify_secret: SecretStr = SecretStr(DEVELOPMENT_SECRET)
    # A payment notice whose timestamp is older than this is refused (replays).
    payment_notify_max_age_seconds: int = Field(default=300, gt=0)
    # Telegram Mini App initData older than this (auth_date) is refused.
    miniapp_init_data_max_age_seconds: int = Field(default=3600, gt=0)

    @field_validator("public_base_url")
    @classmethod
    def _public_base_url_is_http(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")) or (len(value.split("/")) > 3 and value.split("/", 3)[3].strip("/")):
            raise ValueError("must be an http:// or https:// origin, e.g. https://shop.example.com (no path)")
        return value.rstrip("/")

    @field_validator("web_gateway")
    @classmethod
    def _known_gateways(cls, value: str | None) -> str | None:
        if value is None:
            return None
        names = [name.strip() for name in value.split(",") if name.strip()]
        unknown = [name for name in names if name not in WEB_GATEWAYS]
        if not names or unknown or len(set(names)) != len(names):
            raise ValueError(f"must name gateways among {', '.join(WEB_GATEWAYS)}, comma-separated, each once")
        if "sandbox" in names and len(names) > 1:
            raise ValueError("the sandbox stands alone: it is not offered next to a real provider")
        return ",".join(names)

    @property
    def web_gateway_name(self) -> str:
        """The default web gateway (the first named)."""
        return self.web_gateways[0]

    @property
    def web_gateways(self) -> list[str]:
        return (self.web_gateway or "sandbox").split(",")

    # --- payment rails (docs/payments.md): services/wechat_pay.py, alipay.py, refunds.py -------------
    # In-chat invoices: CNY through PAYMENT_PROVIDER_TOKEN, or XTR (Telegram Stars: the catalog's star
    # prices, no provider token; refunds through refundStarPayment).
    chat_currency: Literal["CNY", "XTR"] = "CNY"
    # WeChat Pay merchant id (商户号).
    wechat_mchid: str | None = None
    # The AppID bound to the merchant (服务号/公众号, or a website application's).
    wechat_appid: str | None = None
    # Serial number of the merchant API certificate (商户API证书序列号).
    wechat_merchant_serial: str | None = None
    # The merchant API private key (apiclient_key.pem): PEM text, or the path of the PEM file.
    wechat_merchant_private_key: SecretStr | None = None
    # The APIv3 key (32 characters, set in the merchant platform): notices are decrypted with it.
    wechat_apiv3_key: SecretStr | None = None
    # WeChat Pay public keys (or platform certificates) by serial, as JSON
    # {"PUB_KEY_ID_...": "PEM text or path"}; two while WeChat Pay rotates them.
    wechat_platform_public_keys: dict[str, str] = Field(default_factory=dict)
    # WeChat Pay's API (a local fake in tests and the playground).
    wechat_api_base: str = "https://api.mch.weixin.qq.com"
    # Inside WeChat's own browser, pay with WeChat's payment sheet (JSAPI) instead of the QR code: the
    # buyer's openid comes from WeChat's OAuth (snsapi_base). Needs WECHAT_APP_SECRET (docs/payments.md).
    wechat_jsapi: bool = False
    # The AppSecret of WECHAT_APPID (the 服务号's), to exchange WeChat's OAuth codes for openids.
    wechat_app_secret: SecretStr | None = None
    # WeChat's OAuth page, where the buyer's browser goes (a local fake in tests and the playground).
    wechat_oauth_base: str = "https://open.weixin.qq.com"
    # WeChat's API that exchanges an OAuth code for the openid (a local fake in tests and the playground).
    wechat_sns_api_base: str = "https://api.weixin.qq.com"
    # Alipay open platform app id (应用 APPID).
    alipay_app_id: str | None = None
    # The app private key (应用私钥): PEM text, the path of a PEM file, or the bare base64 Alipay's key tool writes.
    alipay_app_private_key: SecretStr | None = None
    # The Alipay public key (支付宝公钥, not the app's own): PEM text, a path, or bare base64.
    alipay_public_key: str | None = None
    # Alipay's gateway (a local fake in tests and the playground).
    alipay_gateway_url: str = "https://openapi.alipay.com/gateway.do"
    # The seller's Alipay user id (2088...): when set, a notice for another seller is refused.
    alipay_seller_id: str | None = None
    # An Alipay notice whose notify_time is older than this is refused (Alipay retries for about 25 hours).
    alipay_notify_max_age_seconds: int = Field(default=26 * 3600, gt=0)

    @model_validator(mode="after")
    def _every_problem_at_once(self) -> Settings:
        problems = payment_rail_problems(self)
        if self.environment == "production":
            problems += production_problems(self)
        if problems:
            raise ValueError("\n".join(problems))
        return self

    # --- customer service (F11, R16, R17): bot/flows/support, services/support.py ----------------
    # The staff forum supergroup (topics enabled, the bot an admin allowed to manage topics) where
    # agents answer customers, e.g. -1001234567890. Unset: 联系客服 shows a static contact screen.
    staff_chat_id: int | None = Field(default=None, lt=0)
    # Working hours, reply-time estimate, reopen window, flood limit, transcript cap.
    support_config_path: Path = DEFAULT_SUPPORT_PATH
    # An agent's negotiated price below this percentage of the list price needs a second agent's
    # approval (an approve button in the topic); 100: every discount does, 0: none does.
    quote_floor_percent: int = Field(default=80, ge=0, le=100)

    # --- time-driven work: services/scheduler.py, bot/runtime/jobs.py ---------------------------
    # How often each process runs a scheduler tick (expiry, trials, unpaid orders, reminders).
    # Several instances may run: a Redis lease lets one of them work per tick. 0 turns it off.
    scheduler_interval_seconds: int = Field(default=60, ge=0, le=3600)

    # --- the process (bot/runtime/gc_tuning.py) ---------------------------------------------------------
    # The garbage collector's generation thresholds for `python -m bot run`, as JSON, e.g.
    # [50000,20,10]; [700,10,10] is CPython's default (docs/performance.md, "The garbage collector").
    gc_thresholds: tuple[int, int, int] = (50_000, 20, 10)

    # aiogram's router walk in one pass, skipping routers and handlers that cannot match
    # (bot/runtime/aiogram_tuning.py; docs/performance.md). false: aiogram's own walk.
    aiogram_tuning: bool = True

    @field_validator("gc_thresholds")
    @classmethod
    def _gc_thresholds_not_negative(cls, value: tuple[int, int, int]) -> tuple[int, int, int]:
        if min(value) < 0:
            raise ValueError("thresholds cannot be negative")
        return value


# --- production: every development stand-in refused (docs/security.md) --------------------------
# Each check yields its problems, one line each, naming the variable to set. Add a check by
# appending a function to PRODUCTION_CHECKS; start-up reports all their lines at once.

ProductionCheck = Callable[[Settings], Iterator[str]]


def _real_web_gateway(s: Settings) -> Iterator[str]:
    # Only the sandbox uses PAYMENT_NOTIFY_SECRET, so refusing the sandbox leaves it unused.
    if s.web_gateway is None or "sandbox" in s.web_gateways:
        yield "WEB_GATEWAY must be wechat and/or alipay in production (unset or sandbox takes no real money)"


def _code_secret(s: Settings) -> Iterator[str]:
    secret = s.code_secret.get_secret_value()
    if secret == DEVELOPMENT_SECRET or len(secret) < MIN_SECRET_LENGTH:
        yield (f"CODE_SECRET must be set in production: at least {MIN_SECRET_LENGTH} random characters "
               "(e.g. `openssl rand -hex 32`), not the development default")


def _real_sms(s: Settings) -> Iterator[str]:
    if s.sms_backend == "console":
        yield "SMS_BACKEND=console only prints codes on stdout: set SMS_BACKEND=http with the provider's SMS_API_URL"
        return
    if not s.sms_api_url or not s.sms_api_url.startswith("https://"):
        yield "SMS_API_URL must be the SMS provider's https:// URL in production"
    if s.sms_api_key is None or not s.sms_api_key.get_secret_value():
        yield "SMS_API_KEY must be set in production (the SMS provider's key)"


def _chat_payments(s: Settings) -> Iterator[str]:
    if s.chat_currency == "CNY" and not s.payment_provider_token.get_secret_value():
        yield ("PAYMENT_PROVIDER_TOKEN must be set in production for CHAT_CURRENCY=CNY (empty is the sandbox only "
               "the local fake accepts), or CHAT_CURRENCY=XTR for Telegram Stars")


def _https_urls(s: Settings) -> Iterator[str]:
    if not s.public_base_url.startswith("https://"):
        yield "PUBLIC_BASE_URL must be an https:// origin in production (checkout pages carry payments and codes)"
    if s.webhook_url and not s.webhook_url.startswith("https://"):
        yield "WEBHOOK_URL must be an https:// URL in production"
    # The providers' endpoints carry keys and payments; a local fake's http URL must not reach production.
    provider_urls = {"wechat": ["wechat_api_base"] + (["wechat_oauth_base", "wechat_sns_api_base"] if s.wechat_jsapi else []),
                     "alipay": ["alipay_gateway_url"]}
    for gateway in s.web_gateways:
        for name in provider_urls.get(gateway, []):
            if not str(getattr(s, name)).startswith("https://"):
                yield f"{name.upper()} must be the provider's https:// URL in production"


def _protected_metrics(s: Settings) -> Iterator[str]:
    token = s.metrics_token.get_secret_value() if s.metrics_token else ""
    if s.metrics_port is None and not token:
        yield ("METRICS_TOKEN must be set in production (scrapes send it as a bearer token), "
               "or METRICS_PORT to serve /metrics on an internal listener of its own")
    elif token and len(token) < MIN_TOKEN_LENGTH:
        yield f"METRICS_TOKEN must be at least {MIN_TOKEN_LENGTH} characters"
    if s.metrics_port is not None and s.metrics_port == s.web_port and s.metrics_host == s.web_host:
        yield "METRICS_PORT must differ from WEB_PORT (or METRICS_HOST from WEB_HOST)"


PRODUCTION_CHECKS: list[ProductionCheck] = [
    _real_web_gateway,
    _code_secret,
    _real_sms,
    _chat_payments,
    _https_urls,
    _protected_metrics,
]


def production_problems(settings: Settings) -> list[str]:
    """What production refuses in these settings, one line each (empty: none)."""
    return [line for check in PRODUCTION_CHECKS for line in check(settings)]


# --- the payment providers' settings, checked in every environment ---------------------------------

def payment_rail_problems(settings: Settings) -> list[str]:
    """A provider chosen without its settings, or with a key that does not load, in any environment.
    (What production refuses besides, the sandbox and plain-http URLs among it, is in PRODUCTION_CHECKS.)"""
    problems: list[str] = []
    gateways = settings.web_gateways
    if "wechat" in gateways:
        problems += _wechat_problems(settings)
    if "alipay" in gateways:
        problems += _alipay_problems(settings)
    return problems


def _missing(settings: Settings, names: list[str]) -> list[str]:
    missing = []
    for name in names:
        value = getattr(settings, name)
        text = value.get_secret_value() if hasattr(value, "get_secret_value") else value
        if not text:
            missing.append(name.upper())
    return missing


def _wechat_problems(settings: Settings) -> list[str]:
    from config import payment_rails as rails  # the key loaders import the provider modules: only when used
    missing = _missing(settings, ["wechat_mchid", "wechat_appid", "wechat_merchant_serial",
                                  "wechat_merchant_private_key", "wechat_apiv3_key", "wechat_platform_public_keys"])
    if settings.wechat_jsapi:  # JSAPI cannot find the buyer's openid without the AppSecret
        missing += [f"{name} (WECHAT_JSAPI=true)" for name in _missing(settings, ["wechat_app_secret"])]
    problems = [f"WEB_GATEWAY=wechat needs {', '.join(missing)}"] if missing else []
    private_key = settings.wechat_merchant_private_key.get_secret_value() if settings.wechat_merchant_private_key else ""
    for check in (lambda: private_key and rails.wechat_private_key(private_key),
                  lambda: rails.wechat_platform_keys(settings.wechat_platform_public_keys)):
        try:
            check()
        except rails.KeyProblem as problem:
            problems.append(str(problem))
    apiv3 = settings.wechat_apiv3_key.get_secret_value() if settings.wechat_apiv3_key else ""
    if apiv3 and len(apiv3.encode()) != 32:
        problems.append("WECHAT_APIV3_KEY: must be the 32 characters set in the merchant platform")
    return problems


def _alipay_problems(settings: Settings) -> list[str]:
    from config import payment_rails as rails  # the key loaders import the provider modules: only when used
    missing = _missing(settings, ["alipay_app_id", "alipay_app_private_key", "alipay_public_key"])
    problems = [f"WEB_GATEWAY=alipay needs {', '.join(missing)}"] if missing else []
    if settings.alipay_app_private_key and settings.alipay_app_private_key.get_secret_value():
        try:
            rails.alipay_private_key(settings.alipay_app_private_key.get_secret_value())
        except rails.KeyProblem as problem:
            problems.append(str(problem))
    if settings.alipay_public_key:
        try:
            rails.alipay_public_key(settings.alipay_public_key)
        except rails.KeyProblem as problem:
            problems.append(str(problem))
    return problems
