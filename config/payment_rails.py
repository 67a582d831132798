"""The payment rails' settings: which are missing, and the providers' keys as the settings give them.

`payment_rail_problems(settings)` lists every problem at once (the settings' validator joins
them with production's own, one line each): a provider chosen without its settings or with a
key that does not load.

A key setting holds either the key itself or the path of a file holding it:
- a value that contains "-----BEGIN" is PEM text (a multi-line environment variable, or one
  with its newlines written as \\n);
- any other value is read as a path first; Alipay's keys may also be the bare base64 its key
  tool and open platform show, so for them a value that is no file is taken as that base64.
Nothing here is ever logged; an unreadable key is named by its setting, never shown.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from services import alipay, wechat_pay

if TYPE_CHECKING:
    from config.settings import Settings


# A key in bare base64 is hundreds of characters long; no path looks like that.
BARE_BASE64 = re.compile(r"^[A-Za-z0-9+/=\s]{200,}$")


class KeyProblem(ValueError):
    """A key setting that cannot be used; the message names the setting and says why."""


def key_text(setting: str, value: str, *, bare_base64: bool = False) -> str:
    """The key's text from the setting's value: PEM as given, or the content of the file named."""
    value = value.strip()
    if "-----BEGIN" in value:
        return value.replace("\\n", "\n")
    if bare_base64 and BARE_BASE64.match(value):
        return value
    try:
        return Path(value).expanduser().read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise KeyProblem(f"{setting}: neither PEM text nor a readable file ({reason})") from None


def wechat_private_key(value: str) -> str:
    text = key_text("WECHAT_MERCHANT_PRIVATE_KEY", value)
    try:
        wechat_pay.load_private_key(text)
    except Exception:  # cryptography's refusals are not all ValueErrors
        raise KeyProblem("WECHAT_MERCHANT_PRIVATE_KEY: not an RSA private key in PEM") from None
    return text


def wechat_platform_keys(value: dict[str, str]) -> dict[str, str]:
    found = {}
    for serial, given in value.items():
        text = key_text(f"WECHAT_PLATFORM_PUBLIC_KEYS[{serial}]", given)
        try:
            wechat_pay.load_public_key(text)
        except Exception:  # cryptography's refusals are not all ValueErrors
            raise KeyProblem(f"WECHAT_PLATFORM_PUBLIC_KEYS[{serial}]: not an RSA public key or certificate in PEM") from None
        found[serial] = text
    return found


def alipay_private_key(value: str) -> str:
    text = key_text("ALIPAY_APP_PRIVATE_KEY", value, bare_base64=True)
    try:
        alipay.load_private_key(text)
    except Exception:  # cryptography's refusals are not all ValueErrors
        raise KeyProblem("ALIPAY_APP_PRIVATE_KEY: not an RSA private key (PEM or base64)") from None
    return text


def alipay_public_key(value: str) -> str:
    text = key_text("ALIPAY_PUBLIC_KEY", value, bare_base64=True)
    try:
        alipay.load_public_key(text)
    except Exception:  # cryptography's refusals are not all ValueErrors
        raise KeyProblem("ALIPAY_PUBLIC_KEY: not an RSA public key (PEM or base64)") from None
    return text


def payment_rail_problems(settings: Settings) -> list[str]:
    """A provider chosen without its settings, or with a key that does not load, in any environment.
    (What production refuses besides, the sandbox and plain-http URLs among it, is in config.settings.)"""
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
    missing = _missing(settings, ["wechat_mchid", "wechat_appid", "wechat_merchant_serial",
                                  "wechat_merchant_private_key", "wechat_apiv3_key", "wechat_platform_public_keys"])
    if settings.wechat_jsapi:  # JSAPI cannot find the buyer's openid without the AppSecret
        missing += [f"{name} (WECHAT_JSAPI=true)" for name in _missing(settings, ["wechat_app_secret"])]
    problems = [f"WEB_GATEWAY=wechat needs {', '.join(missing)}"] if missing else []
    private_key = settings.wechat_merchant_private_key.get_secret_value() if settings.wechat_merchant_private_key else ""
    for check in (lambda: private_key and wechat_private_key(private_key),
                  lambda: wechat_platform_keys(settings.wechat_platform_public_keys)):
        try:
            check()
        except KeyProblem as problem:
            problems.append(str(problem))
    apiv3 = settings.wechat_apiv3_key.get_secret_value() if settings.wechat_apiv3_key else ""
    if apiv3 and len(apiv3.encode()) != 32:
        problems.append("WECHAT_APIV3_KEY: must be the 32 characters set in the merchant platform")
    return problems


def _alipay_problems(settings: Settings) -> list[str]:
    missing = _missing(settings, ["alipay_app_id", "alipay_app_private_key", "alipay_public_key"])
    problems = [f"WEB_GATEWAY=alipay needs {', '.join(missing)}"] if missing else []
    if settings.alipay_app_private_key and settings.alipay_app_private_key.get_secret_value():
        try:
            alipay_private_key(settings.alipay_app_private_key.get_secret_value())
        except KeyProblem as problem:
            problems.append(str(problem))
    if settings.alipay_public_key:
        try:
            alipay_public_key(settings.alipay_public_key)
        except KeyProblem as problem:
            problems.append(str(problem))
    return problems
