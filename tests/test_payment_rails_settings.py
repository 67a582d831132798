"""Production refuses to start on the sandbox gateway, and with any provider setting missing or
unusable, naming every one of them at once, one line each (config/payment_rails.py). `python -m bot run`
as the operator starts it; the checks come before Redis or the Bot API are asked anything."""
from __future__ import annotations

import pytest
from esign_devkit.testing.fake_alipay import FakeAlipay
from esign_devkit.testing.fake_wechat_pay import FakeWechatPay
from pydantic import ValidationError

from config.settings import Settings
from tests.test_process import clean_env, run_cli

PRODUCTION = {"ENVIRONMENT": "production", "BOT_TOKEN": "123:ABC", "CODE_SECRET": "c" * 64, "SMS_BACKEND": "http",
              "SMS_API_URL": "https://sms.example.com/send", "SMS_API_KEY": "k" * 32, "METRICS_TOKEN": "m" * 32,
              "REDIS_URL": "redis://127.0.0.1:1/0", "PUBLIC_BASE_URL": "https://shop.example.com",
              "PAYMENT_PROVIDER_TOKEN": "provider-token"}


async def test_production_refuses_the_sandbox_in_one_line():
    code, _, err = await run_cli("run", env=clean_env(**PRODUCTION, WEB_GATEWAY="sandbox"))

    assert code != 0 and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert "WEB_GATEWAY must be wechat and/or alipay in production" in err


async def test_production_names_every_missing_provider_setting_at_once():
    env = clean_env(**{**PRODUCTION, "PAYMENT_PROVIDER_TOKEN": "", "PUBLIC_BASE_URL": "http://shop.example.com"},
                    WEB_GATEWAY="wechat,alipay", WECHAT_MERCHANT_PRIVATE_KEY="/nowhere/apiclient_key.pem")

    code, _, err = await run_cli("run", env=env)

    lines = err.strip().splitlines()
    assert code != 0 and all(line.startswith("error: ") for line in lines) and "Traceback" not in err, err
    assert len(lines) == 5, err  # wechat's missing, its key file, alipay's missing, the token, the URL
    for name in ("WECHAT_MCHID", "WECHAT_APPID", "WECHAT_MERCHANT_SERIAL", "WECHAT_APIV3_KEY",
                 "WECHAT_PLATFORM_PUBLIC_KEYS", "ALIPAY_APP_ID", "ALIPAY_APP_PRIVATE_KEY", "ALIPAY_PUBLIC_KEY",
                 "PAYMENT_PROVIDER_TOKEN", "PUBLIC_BASE_URL must be an https:// origin"):
        assert name in err, f"{name} not named: {err}"
    assert "WECHAT_MERCHANT_PRIVATE_KEY: neither PEM text nor a readable file" in err


async def test_provider_keys_are_read_from_pem_text_or_a_file(tmp_path):
    async with FakeWechatPay() as wechat, FakeAlipay() as alipay:
        given = {**wechat.merchant_settings(), **alipay.app_settings()}
    key_file = tmp_path / "apiclient_key.pem"
    key_file.write_text(given["wechat_merchant_private_key"], encoding="ascii")
    as_files = {**given, "wechat_merchant_private_key": str(key_file),
                "wechat_platform_public_keys": {serial: _written(tmp_path, serial, pem)
                                                for serial, pem in given["wechat_platform_public_keys"].items()}}
    one_line = {**given, "alipay_app_private_key": given["alipay_app_private_key"].replace("\n", "\\n")}
    for values in (given, as_files, one_line):
        settings = Settings(_env_file=None, web_gateway="wechat,alipay", **values)
        assert settings.web_gateways == ["wechat", "alipay"]
    with pytest.raises(ValidationError, match=r"WECHAT_PLATFORM_PUBLIC_KEYS.*not an RSA public key"):
        Settings(_env_file=None, web_gateway="wechat",
                 **{**given, "wechat_platform_public_keys": {"PUB_KEY_ID_1": given["wechat_merchant_private_key"]}})
    with pytest.raises(ValidationError, match="WECHAT_APIV3_KEY: must be the 32 characters"):
        Settings(_env_file=None, web_gateway="wechat", **{**given, "wechat_apiv3_key": "short"})


def _written(folder, serial: str, pem: str) -> str:
    path = folder / f"{serial}.pem"
    path.write_text(pem, encoding="ascii")
    return str(path)
