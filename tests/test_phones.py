from __future__ import annotations

import pytest

from services.phones import InvalidPhone, mask_phone, normalize_phone


@pytest.mark.parametrize(
    "raw, e164",
    [
        ("13800138000", "+8613800138000"),
        ("+86 138-0013-8000", "+8613800138000"),
        ("008613800138000", "+8613800138000"),
        ("  138 0013 8000 ", "+8613800138000"),
        ("１３８００１３８０００", "+8613800138000"),  # full-width digits from a Chinese IME
        ("+1 650 253 0000", "+16502530000"),
        ("010 6552 9988", "+861065529988"),  # a Beijing landline: security phones may be landlines
    ],
)
def test_valid_numbers(raw: str, e164: str) -> None:
    assert normalize_phone(raw) == e164


def test_region_applies_to_national_numbers() -> None:
    assert normalize_phone("(650) 253-0000", region="US") == "+16502530000"


@pytest.mark.parametrize(
    "raw, reason",
    [
        ("", "not_a_number"),
        ("   ", "not_a_number"),
        ("abc", "not_a_number"),
        ("1380013800O", "not_a_number"),  # letter O, not zero
        ("1-800-FLOWERS", "not_a_number"),  # vanity letters are not accepted
        ("+", "not_a_number"),
        ("1" * 60, "not_a_number"),
        ("1380013800", "invalid"),  # one digit short
        ("138001380001", "invalid"),  # one digit long
        ("12345", "invalid"),
        ("+86 999 9999 9999", "invalid"),
        ("13800138000#12", "invalid"),  # extensions can't receive SMS
    ],
)
def test_invalid_numbers(raw: str, reason: str) -> None:
    with pytest.raises(InvalidPhone) as err:
        normalize_phone(raw)
    assert err.value.reason == reason
    assert isinstance(err.value, ValueError)


def test_mask_keeps_country_code_and_last_four() -> None:
    assert mask_phone("+8613800138000") == "+86*******8000"
    assert mask_phone("+16502530000") == "+1******0000"
    assert mask_phone("+861065529988") == "+86******9988"


def test_mask_never_shows_a_whole_short_or_odd_number() -> None:
    assert mask_phone("+861234") == "+86****"
    assert "13800" not in mask_phone("13800138000")
