"""Callback data: ids and codes only, never display names (Telegram allows 64 bytes)."""
from aiogram.filters.callback_data import CallbackData


class Nav(CallbackData, prefix="nav"):
    """Screens reachable from anywhere: home, catalog, buy, orders, contact (R17)."""

    to: str


class PickEdition(CallbackData, prefix="ed"):
    code: str


class PickYears(CallbackData, prefix="yr"):
    years: int


class PickPack(CallbackData, prefix="pk"):
    code: str  # "none" for no add-on pack


class BuyAction(CallbackData, prefix="buy"):
    action: str  # submit, restart, back


class PhoneAction(CallbackData, prefix="ph"):
    action: str  # resend, change


class OrderAction(CallbackData, prefix="ord"):
    action: str  # view, pay, cancel, bind
    order_id: str


class BindPick(CallbackData, prefix="bnd"):
    order_id: str
    enterprise_id: str


class BindConfirm(CallbackData, prefix="bok"):
    order_id: str
    enterprise_id: str
