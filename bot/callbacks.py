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


class BuyFor(CallbackData, prefix="for"):
    """Whom the purchase is for: an enterprise id, or "other" (bound after payment)."""

    ent: str


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


class SupportAction(CallbackData, prefix="sup"):
    """Customer service, customer side (F11, R16): invoice (开具发票; ref is the order id), end
    (结束咨询). 购买咨询 and 联系客服 are Nav(to="consult") and Nav(to="contact")."""

    action: str
    ref: str = ""


class StaffAction(CallbackData, prefix="stf"):
    """Buttons in the staff group: claim, close, invoiced (ref: order id), transfer (ref: agent
    id), quote (opens the quote wizard)."""

    action: str
    ticket: str
    ref: str = ""


class StaffQuote(CallbackData, prefix="sq"):
    """The quote wizard in a customer's topic (F11): edition → years → add-on pack → send. Codes
    only; addon "-" is no pack; step: y (years), p (pack), c (confirm), s (send), x (cancel)."""

    ticket: str
    step: str
    edition: str = ""
    years: int = 0
    addon: str = ""


# --- the rest of the catalogue: 费用管理, renew, upgrade, value-added, trial, info -----


class BillingEnt(CallbackData, prefix="blent"):
    """An enterprise's billing actions (also on reminders): view (费用管理), renew (版本续费),
    upgrade (升级版本), services (增值服务), trial (申请试用), login (verify the phone first).
    ent is the enterprise id, "-" when none is chosen yet."""

    action: str
    ent: str


class BillingPick(CallbackData, prefix="blpk"):
    """A choice inside a billing flow: what is years | edition | service | option; code its value."""

    what: str
    code: str


class BillingGo(CallbackData, prefix="blgo"):
    """A billing flow's actions: submit (提交订单), back, downgrade (asks about a downgrade, R5)."""

    action: str


class TrialPick(CallbackData, prefix="bltr"):
    """The trial application (F10): field is edition | confirm | industry | volume | edit | submit
    | resend | change | enterprise; value the code chosen."""

    field: str
    value: str = ""


class InfoPage(CallbackData, prefix="blinf"):
    """Information screens from 首页: refund (退费说明), invoice (开票说明), faq (常见问题),
    editions (了解企业版服务, R9), buy_advanced (高级版 立即购买 from there)."""

    page: str

