"""What kind of event an update carries."""
from __future__ import annotations

from aiogram.types import Update

EVENT_FIELDS = frozenset(Update.model_fields) - {"update_id"}


def update_kind(update: Update) -> str:
    """The update's event field ("message", "callback_query", ...); "unknown" when it carries
    none aiogram knows of (a newer Bot API's, kept as an extra field). Update.event_type says
    the same, but hashes the whole frozen update each time it is asked."""
    for name in update.model_fields_set:
        if name in EVENT_FIELDS and getattr(update, name) is not None:
            return name
    return "unknown"
