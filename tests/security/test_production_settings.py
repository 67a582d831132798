"""Production refuses every development stand-in and default secret, and says all
that is wrong at once, one line each, exit 2, no traceback, whatever the Redis topology."""
from __future__ import annotations

import pytest
from pydantic import SecretStr

from bot.runtime.runner import StartupError, load_settings
from config.settings import PRODUCTION_CHECKS, Settings, production_problems
from tests.test_process import clean_env, run_cli

GOOD = {  # what a production deployment sets (WEB_GATEWAY aside: only real gateways pass)
    "environment": "production",
    "code_secret": SecretStr("c" * 64),
    "sms_backend": "http",
    "sms_api_url": "https://sms.example.com/send",
    "sms_api_key": SecretStr("k" * 32),
    "payment_provider_token": SecretStr("provider:LIVE"),
    "public_base_url": "https://shop.example.com",
    "metrics_token": SecretStr("m" * 32),
}


def production(**changes: object) -> Settings:
    """Settings as production would read them, built without validation, so that each rule can
    be asked on its own (the payment providers' keys are checked elsewhere)."""
    return Settings.model_construct(**{**Settings.model_construct().__dict__, **GOOD, "web_gateway": "wechat",
                                       **changes})


def test_a_complete_production_configuration_has_no_problems():
    assert production_problems(production()) == []
    assert production_problems(production(metrics_token=None, metrics_port=9464)) == []


@pytest.mark.parametrize(("change", "named"), [
    ({"web_gateway": None}, "WEB_GATEWAY"),
    ({"web_gateway": "sandbox"}, "WEB_GATEWAY"),
    ({"code_secret": SecretStr("local-development-only")}, "CODE_SECRET"),
    ({"code_secret": SecretStr("short")}, "CODE_SECRET"),
    ({"sms_backend": "console"}, "SMS_BACKEND=console"),
    ({"sms_api_url": "http://sms.example.com/send"}, "SMS_API_URL"),
    ({"sms_api_url": None}, "SMS_API_URL"),
    ({"sms_api_key": None}, "SMS_API_KEY"),
    ({"payment_provider_token": SecretStr("")}, "PAYMENT_PROVIDER_TOKEN"),
    ({"public_base_url": "http://127.0.0.1:8080"}, "PUBLIC_BASE_URL"),
    ({"webhook_url": "http://bot.example.com"}, "WEBHOOK_URL"),
    ({"metrics_token": None}, "METRICS_TOKEN"),
    ({"metrics_token": SecretStr("short")}, "METRICS_TOKEN"),
    ({"metrics_port": 8080, "metrics_host": "127.0.0.1", "web_port": 8080, "web_host": "127.0.0.1"}, "METRICS_PORT"),
    ({"wechat_api_base": "http://127.0.0.1:9001"}, "WECHAT_API_BASE"),
    ({"wechat_jsapi": True, "wechat_oauth_base": "http://127.0.0.1:9001"}, "WECHAT_OAUTH_BASE"),
    ({"wechat_jsapi": True, "wechat_sns_api_base": "http://127.0.0.1:9001"}, "WECHAT_SNS_API_BASE"),
    ({"web_gateway": "alipay", "alipay_gateway_url": "http://127.0.0.1:9002/gateway.do"}, "ALIPAY_GATEWAY_URL"),
])
def test_each_development_stand_in_is_refused_in_production(change, named):
    problems = production_problems(production(**change))
    assert len(problems) == 1 and named in problems[0], problems


def test_a_fakes_url_is_only_refused_for_a_provider_in_use():
    assert production_problems(production(web_gateway="wechat", alipay_gateway_url="http://127.0.0.1:9002")) == []
    assert production_problems(production(wechat_jsapi=False, wechat_oauth_base="http://127.0.0.1:9001")) == []


def test_stars_in_chat_need_no_provider_token():
    assert production_problems(production(chat_currency="XTR", payment_provider_token=SecretStr(""))) == []


def test_development_accepts_its_stand_ins():
    settings = Settings(_env_file=None)
    assert settings.environment == "development" and settings.sms_backend == "console"
    assert len(production_problems(settings)) == 6  # what production would refuse in them


def test_every_problem_at_once_one_line_each(monkeypatch):
    for name in list(Settings.model_fields):
        monkeypatch.delenv(name.upper(), raising=False)
    monkeypatch.setenv("ENVIRONMENT", "production")
    monkeypatch.setenv("WEB_PORT", "eighty")  # a broken variable too: reported beside the rules
    with pytest.raises(StartupError) as refused:
        load_settings()
    lines = str(refused.value).splitlines()
    assert lines[0].startswith("setting WEB_PORT is invalid")
    for named in ("WEB_GATEWAY", "CODE_SECRET", "SMS_BACKEND", "PAYMENT_PROVIDER_TOKEN", "PUBLIC_BASE_URL",
                  "METRICS_TOKEN"):
        assert sum(named in line for line in lines) == 1, (named, lines)
    assert len(lines) == 7


def test_a_new_check_is_one_function_in_the_list(monkeypatch):
    def no_fridays(settings):
        yield "DEPLOY_DAY must not be Friday"

    monkeypatch.setattr("config.settings.PRODUCTION_CHECKS", [*PRODUCTION_CHECKS, no_fridays])
    assert production_problems(production())[-1] == "DEPLOY_DAY must not be Friday"


TOPOLOGIES = [
    "redis://127.0.0.1:1/0",
    "rediss://127.0.0.1:1/0",
    "unix:///nonexistent/redis.sock?db=0",
    "redis+sentinel://127.0.0.1:1,127.0.0.1:2/esign/0",
    "redis+cluster://127.0.0.1:1,127.0.0.1:2",
    "rediss+cluster://:secret@127.0.0.1:1",
]


async def test_production_start_up_matrix_every_topology_all_problems_exit_2_no_traceback():
    for url in TOPOLOGIES:
        code, _out, err = await run_cli("run", env=clean_env(ENVIRONMENT="production", REDIS_URL=url,
                                                            BOT_TOKEN="123:abc"))
        lines = err.strip().splitlines()
        assert code == 2 and "Traceback" not in err, (url, code, err)
        assert len(lines) == 6 and all(line.startswith("error: ") for line in lines), (url, err)
        assert "secret" not in err


async def test_an_unreachable_redis_is_one_line_exit_2_on_every_topology():
    for url in TOPOLOGIES:
        code, _out, err = await run_cli("run", env=clean_env(REDIS_URL=url, BOT_TOKEN="123:abc"))
        lines = err.strip().splitlines()
        assert code == 2 and "Traceback" not in err and len(lines) == 1, (url, code, err)
        assert lines[0].startswith("error: Redis at ") and "does not answer" in lines[0], (url, err)
        assert "secret" not in err and "<" not in lines[0], err  # no password, no object reprs
