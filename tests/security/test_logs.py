"""Log lines carry the update's ids as JSON fields (bound per update, on a failed
update's line too), a line's own key=value placeholders become fields, and phone numbers are
masked in every format phonenumbers takes (docs/security.md, "Logs")."""
from __future__ import annotations

import io
import json
import logging
import re

import phonenumbers
import pytest

from bot.runtime.logs import JsonFormatter, TextFormatter, mask_digits
from services.phones import InvalidPhone, normalize_phone
from tests.flows.steps import to_payment

FORMATS = (phonenumbers.PhoneNumberFormat.E164, phonenumbers.PhoneNumberFormat.INTERNATIONAL,
           phonenumbers.PhoneNumberFormat.NATIONAL, phonenumbers.PhoneNumberFormat.RFC3966)
CN_NUMBERS = ["+8613800138000", "+8619912345678", "+8616612345678", "+861065529988", "+862160881234",
              "+8675534567890"]  # mobiles, Beijing, Shanghai, Shenzhen landlines


def example_numbers() -> list[phonenumbers.PhoneNumber]:
    found = []
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        for kind in (phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE):
            number = phonenumbers.example_number_for_type(region, kind)
            if number is not None:
                found.append(number)
    return found


def written_forms(number: phonenumbers.PhoneNumber) -> set[str]:
    """Every way phonenumbers writes the number, and the ways people do."""
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    forms = {phonenumbers.format_number(number, f) for f in FORMATS}
    international = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    forms |= {"00" + e164[1:], international.replace(" ", "-"), international.replace(" ", ".")}
    if number.country_code == 86:
        national = str(number.national_number)
        forms |= {e164[1:], f"86-{national}", f"0086 {national}", f"{national[:3]}-{national[3:7]}-{national[7:]}",
                  f"{national[:3]} {national[3:7]} {national[7:]}", f"({national[:3]}) {national[3:7]} {national[7:]}",
                  f"+86 {national[:3]} {national[3:7]} {national[7:]}"}
    return forms


def visible_digits(masked: str, number: phonenumbers.PhoneNumber) -> str:
    return "".join(re.findall(r"\d", masked))


def test_hong_kong_macao_and_taiwan_numbers_as_buyers_type_them():
    for typed in ("+852 9123 4567", "+853 6612 3456", "+886 912 345 678", "00852-9123-4567", "+886-2-2345-6789"):
        assert len(re.findall(r"\d", mask_digits(f"to {typed}"))) <= 4, typed


@pytest.mark.parametrize("e164", CN_NUMBERS)
def test_our_own_region_in_every_written_form(e164):
    number = phonenumbers.parse(e164)
    for form in written_forms(number):
        masked = mask_digits(f"phone {form} end")
        assert len(visible_digits(masked, number)) <= 4, (form, masked)
        assert masked.startswith("phone ") and masked.endswith(" end")


def test_every_number_phonenumbers_takes_is_masked_in_every_format():
    """Example mobile and fixed numbers of every region phonenumbers knows, in each of its formats:
    at most the last four digits are left. And whatever normalize_phone accepts (what a buyer
    can type into the bot) is masked too."""
    numbers = example_numbers()
    assert len(numbers) > 400
    checked = 0
    for number in numbers:
        for form in written_forms(number):
            national_only = form == phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
            if national_only and number.country_code != 86:
                try:  # another region's national form is only a phone number if we would take it
                    normalize_phone(form)
                except InvalidPhone:
                    continue
            masked = mask_digits(f"to {form}.")
            assert len(visible_digits(masked, number)) <= 4, (form, masked)
            checked += 1
    assert checked > 2000


@pytest.mark.parametrize("text", [
    "user=5000001 order=o1a2b3c total=1360000", "at 2026-01-05 12:00:00", "update 987654321 took 0.25s",
    "ticket tead84265 reopened", "version 3.11.7",
])
def test_ids_amounts_and_dates_are_left_alone(text):
    assert mask_digits(text) == text


def record(message: str, *args, **extra) -> logging.LogRecord:
    rec = logging.LogRecord("bot.test", logging.INFO, __file__, 1, message, args, None)
    for key, value in extra.items():
        setattr(rec, key, value)
    return rec


def test_placeholders_become_typed_fields_and_ids_get_their_names():
    entry = json.loads(JsonFormatter().format(record(
        "support.quote ticket=%s order=%s total=%s phone=%s ratio=%.2f", "t1", "o1", 480000, "13800138000", 0.8)))
    assert entry["event"] == "support.quote"
    assert (entry["ticket_id"], entry["order_id"], entry["total"], entry["ratio"]) == ("t1", "o1", 480000, 0.8)
    assert entry["phone"] == "*******8000" and "13800138000" not in json.dumps(entry)
    entry = json.loads(JsonFormatter().format(record("code to %s refused", "+86 138 0013 8000", attempt=2)))
    assert entry["message"] == "code to *******8000 refused" and entry["attempt"] == 2
    text = TextFormatter().format(record("code.sent phone=%s", "8613800138000"))
    assert "8613800138000" not in text and "*******8000" in text


async def test_a_failed_updates_line_carries_update_user_and_order_ids(esign_harness, monkeypatch):
    buyer = esign_harness.user()
    order = await to_payment(esign_harness, buyer)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    old_level = root.level
    root.setLevel(logging.INFO)

    async def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(esign_harness.app.orders, "get", broken)
    try:
        await buyer.send("hello")
        await buyer.tap("我的订单")
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    failed = [e for e in lines if e["event"] == "update.failed"]
    assert failed, lines
    for entry in failed:
        assert entry["user_id"] == buyer.id and isinstance(entry["update_id"], int)
        assert entry["order_id"] == order.id and entry["error"] == "RuntimeError"
    within = [e for e in lines if e.get("update_id") == failed[0]["update_id"]]
    assert all(e["user_id"] == buyer.id for e in within)
    assert "RuntimeError: boom" in failed[0]["exc"]
