"""Phone numbers: parse what people type into E.164, and mask numbers for display and logs."""
from __future__ import annotations

from functools import lru_cache

import phonenumbers

MAX_INPUT = 40  # nobody types a real number longer than this, spaces and dashes included


class InvalidPhone(ValueError):
    """`reason` is short and machine-readable: "not_a_number" or "invalid"."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# Both are pure, and parsing a number is not free (docs/performance.md); a buyer's number comes back
# at every step (typed, the code sent and checked, shown masked on several screens): remembered.
NUMBERS_KEPT = 4096


@lru_cache(maxsize=NUMBERS_KEPT)
def normalize_phone(raw: str, region: str = "CN") -> str:
    """E.164 (`+8613800138000`) for anything phonenumbers calls a valid number, landlines included."""
    text = (raw or "").strip()
    # phonenumbers would read letters as a vanity number (1-800-FLOWERS); nobody means that here.
    if not text or len(text) > MAX_INPUT or any(ch.isalpha() for ch in text):
        raise InvalidPhone("not_a_number")
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        raise InvalidPhone("not_a_number") from None
    if number.extension or not phonenumbers.is_valid_number(number):
        raise InvalidPhone("invalid")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


@lru_cache(maxsize=NUMBERS_KEPT)
def mask_phone(e164: str) -> str:
    """`+8613800138000` -> `+86*******8000`: the country code and the last four digits stay."""
    digits = "".join(ch for ch in e164 if ch.isdigit())
    try:
        country = str(phonenumbers.parse(e164, None).country_code)
    except phonenumbers.NumberParseException:
        country = ""  # not E.164 after all: hide everything but the last four
    rest = digits[len(country):] if digits.startswith(country) else digits
    shown = rest[-4:] if len(rest) > 4 else ""  # too short to show any digits safely
    return (f"+{country}" if country else "") + "*" * (len(rest) - len(shown)) + shown
