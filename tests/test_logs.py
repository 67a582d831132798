"""Structured logs: one JSON object per line, ids in context, phones masked."""
import json
import logging

from bot.runtime.logs import JsonFormatter, bind, mask_digits


def record(message: str, *args) -> logging.LogRecord:
    return logging.LogRecord("bot.test", logging.INFO, __file__, 1, message, args, None)


def test_phone_numbers_are_masked_whatever_the_caller_passes():
    assert mask_digits("to +8613800138000 and 13912345678") == "to *******8000 and *******5678"
    assert mask_digits("user=5000001 order=o1a2b3c total=1360000") == "user=5000001 order=o1a2b3c total=1360000"


def test_a_line_is_one_json_object_with_the_bound_ids():
    bind(update_id=7, user_id=42, order_id="o1")
    line = JsonFormatter().format(record("payment.paid phone=%s", "+8613800138000"))
    entry = json.loads(line)
    assert "\n" not in line
    assert entry["event"] == "payment.paid" and entry["phone"] == "*******8000"
    assert entry["message"] == "payment.paid phone=*******8000"
    assert (entry["update_id"], entry["user_id"], entry["order_id"]) == (7, 42, "o1")
    assert entry["level"] == "info"
