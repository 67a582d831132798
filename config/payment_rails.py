"""The payment providers' keys as the settings give them (config.settings checks them at start-up
with `payment_rail_problems`, and bot.app loads them for the gateways).

A key setting holds either the key itself or the path of a file holding it:
- a value that contains "-----BEGIN" is PEM text (a multi-line environment variable, or one
  with its newlines written as \\n);
- any other value is read as a path first; Alipay's keys may also be the bare base64 its key
  tool and open platform show, so for them a value that is no file is taken as that base64.
Nothing here is ever logged; an unreadable key is named by its setting, never shown.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from services import alipay, wechat_pay

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


def _checked(setting: str, value: str, load: Callable[[str], object], what: str, *, bare_base64: bool = False) -> str:
    """The key's text once `load` accepts it; otherwise a KeyProblem naming the setting."""
    text = key_text(setting, value, bare_base64=bare_base64)
    try:
        load(text)
    except Exception:  # cryptography's refusals are not all ValueErrors
        raise KeyProblem(f"{setting}: not {what}") from None
    return text


def wechat_private_key(value: str) -> str:
    return _checked("WECHAT_MERCHANT_PRIVATE_KEY", value, wechat_pay.load_private_key, "an RSA private key in PEM")


def wechat_platform_keys(value: dict[str, str]) -> dict[str, str]:
    return {serial: _checked(f"WECHAT_PLATFORM_PUBLIC_KEYS[{serial}]", given, wechat_pay.load_public_key,
                             "an RSA public key or certificate in PEM")
            for serial, given in value.items()}


def alipay_private_key(value: str) -> str:
    return _checked("ALIPAY_APP_PRIVATE_KEY", value, alipay.load_private_key, "an RSA private key (PEM or base64)",
                    bare_base64=True)


def alipay_public_key(value: str) -> str:
    return _checked("ALIPAY_PUBLIC_KEY", value, alipay.load_public_key, "an RSA public key (PEM or base64)",
                    bare_base64=True)
