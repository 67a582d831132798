"""Pricing what an enterprise buys for itself (F7–F9): renewal, upgrade, value-added services.

Pure functions of the catalog and the clock's `now`, table-tested (tests/test_billing.py).
Money is integer fen.

升级版本 upgrade (R4, R5), documented in config/catalog.toml and the README:
- only a higher edition; a downgrade (or the same edition) is refused;
- D = the days left of the edition in effect, a started day counting as a whole day;
- price = (annual price of the new edition − annual price of the current one) × D ÷ Y,
  rounded up to the fen, where Y = `upgrade_days_per_year` (365);
- contracts = (yearly quota of the new edition − yearly quota of the current one) × D ÷ Y,
  rounded up to a whole contract;
- the edition changes at once and the expiry stays.
From 体验版 there is nothing to prorate: the "upgrade" is a new edition for 1–3 years at the
list price (`new_edition_quote`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from pydantic import BaseModel

from services.catalog import Catalog, Edition, Quote, QuoteLine
from services.value_added import APP_INTEGRATION, CONTRACT_PACK, MEETING_SIGNING, SIGNING_REPORT

DAY = timedelta(days=1)


class BillingCart(BaseModel):
    """What a member is buying for an enterprise (kept in the conversation's session). Codes only."""

    enterprise_id: str | None = None
    kind: str | None = None  # renewal | upgrade | edition | service
    edition: str | None = None  # renewed, upgraded to (or bought, from 体验版)
    from_edition: str | None = None  # an upgrade: the edition in effect when it was chosen
    years: int | None = None
    service: str | None = None  # a value-added service (services.value_added)
    option: str | None = None  # its pack
    cart_id: str | None = None  # one order per cart: a double tap cannot make two
    phone_pending: str | None = None  # signing in: the code was sent here
    resume: str | None = None  # signing in: the billing button to go on with (BillingEnt, packed)


class BillingRefused(ValueError):
    """The purchase is not possible; `reason` is a word the screens explain."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def ceil_div(numerator: int, denominator: int) -> int:
    """Integer division rounded up (for non-negative numerators), exact on any size."""
    return -(-numerator // denominator)


def days_left(expires_at: datetime | None, now: datetime) -> int:
    """Whole days until `expires_at`, a started day counting as one; 0 when it has passed."""
    if expires_at is None or expires_at <= now:
        return 0
    return math.ceil((expires_at - now) / DAY)


def _sold(catalog: Catalog, code: str) -> Edition:
    edition = catalog.edition(code)
    if edition is None or not edition.sellable:
        raise BillingRefused("unknown_edition")
    return edition


# --- 版本续费 renewal (R4, F7) ----------------------------------------------------------------


def renewal_quote(catalog: Catalog, edition_code: str, years: int) -> Quote:
    """More time on the edition in effect: the list price × years, with the yearly quota."""
    edition = catalog.edition(edition_code)
    if edition is None or edition.rank == catalog.free_edition.rank:
        raise BillingRefused("nothing_to_renew")  # 体验版 is free and has no term
    if not edition.sellable:
        raise BillingRefused("unknown_edition")
    return _edition_quote(catalog, edition, years, kind="renewal")


def new_edition_quote(catalog: Catalog, edition_code: str, years: int) -> Quote:
    """An edition bought for an enterprise on 体验版 (its first edition, or after expiry)."""
    return _edition_quote(catalog, _sold(catalog, edition_code), years, kind="edition")


def _edition_quote(catalog: Catalog, edition: Edition, years: int, *, kind: str) -> Quote:
    if years not in catalog.years:
        raise BillingRefused("bad_years")
    amount = edition.price_per_year_fen * years
    return Quote(
        lines=[QuoteLine(kind="edition", code=edition.code, quantity=years, amount_fen=amount)],
        total_fen=amount,
        contracts=edition.contracts_per_year * years,
        edition=edition.code,
        years=years,
        pack=None,
        chat_payable=catalog.payable_in_chat(kind=kind, edition=edition.code, total_fen=amount),
        kind=kind,
    )


# --- 升级版本 upgrade (R4, R5, F8) -----------------------------------------------------------


@dataclass(frozen=True)
class UpgradeQuote:
    """The prorated upgrade, with every figure of the calculation the confirmation shows."""

    from_edition: str
    to_edition: str
    expires_at: datetime  # unchanged by the upgrade
    days_left: int
    days_per_year: int
    from_price_fen: int  # annual list prices
    to_price_fen: int
    price_fen: int  # (to − from) × days_left ÷ days_per_year, rounded up to the fen
    from_quota: int  # yearly contract quotas
    to_quota: int
    contracts: int  # (to − from) × days_left ÷ days_per_year, rounded up
    chat_payable: bool  # False for 专业版/旗舰版 (R4: the web purchase link) or over the limit

    @property
    def annual_difference_fen(self) -> int:
        return self.to_price_fen - self.from_price_fen

    @property
    def quota_difference(self) -> int:
        return self.to_quota - self.from_quota

    def quote(self) -> Quote:
        line = QuoteLine(kind="upgrade", code=self.to_edition, quantity=self.days_left, amount_fen=self.price_fen)
        return Quote(lines=[line], total_fen=self.price_fen, contracts=self.contracts, edition=self.to_edition,
                     years=0, pack=None, chat_payable=self.chat_payable, kind="upgrade")


def upgradable_to(catalog: Catalog, from_code: str) -> list[Edition]:
    """The editions an enterprise on `from_code` may move to: sellable and strictly higher."""
    rank = catalog.rank(from_code)
    return [e for e in catalog.sellable_editions if e.rank > rank]


def upgrade_quote(
    catalog: Catalog, from_code: str, to_code: str, expires_at: datetime | None, now: datetime
) -> UpgradeQuote:
    """Price an upgrade of the edition in effect (`from_code`, running until `expires_at`)."""
    target = _sold(catalog, to_code)
    current = catalog.edition(from_code)
    if current is None:
        raise BillingRefused("unknown_edition")
    if target.rank < current.rank:
        raise BillingRefused("downgrade")  # R5
    if target.rank == current.rank:
        raise BillingRefused("same_edition")  # that is a renewal
    if current.rank == catalog.free_edition.rank:
        raise BillingRefused("from_free")  # nothing to prorate: new_edition_quote
    days = days_left(expires_at, now)
    if days == 0:
        raise BillingRefused("expired")
    per_year = catalog.upgrade_days_per_year
    price = ceil_div(max(0, target.price_per_year_fen - current.price_per_year_fen) * days, per_year)
    contracts = ceil_div(max(0, target.contracts_per_year - current.contracts_per_year) * days, per_year)
    assert expires_at is not None
    return UpgradeQuote(
        from_edition=current.code, to_edition=target.code, expires_at=expires_at, days_left=days,
        days_per_year=per_year, from_price_fen=current.price_per_year_fen,
        to_price_fen=target.price_per_year_fen, price_fen=price, from_quota=current.contracts_per_year,
        to_quota=target.contracts_per_year, contracts=contracts,
        chat_payable=catalog.payable_in_chat(kind="upgrade", edition=target.code, total_fen=price),
    )


# --- 增值服务 value-added services (F9) ------------------------------------------------------


def service_quote(catalog: Catalog, service: str, option: str | None, years: int | None, edition: str) -> Quote:
    """One value-added service: a 合同加量包 or 签署报告 pack (`option`), or a yearly service for
    `years`. Availability (R6–R8) is services.value_added's; this only prices. `edition` is the
    enterprise's edition at the purchase, kept on the order for the record."""
    if service == CONTRACT_PACK:
        pack = catalog.pack(option)
        if pack is None:
            raise BillingRefused("unknown_option")
        line = QuoteLine(kind="pack", code=pack.code, quantity=1, amount_fen=pack.price_fen)
        contracts, pack_code, years_ = pack.contracts, pack.code, 1
    elif service == SIGNING_REPORT:
        report = catalog.report_pack(option)
        if report is None:
            raise BillingRefused("unknown_option")
        line = QuoteLine(kind="report", code=report.code, quantity=1, amount_fen=report.price_fen,
                         units=report.reports)
        contracts, pack_code, years_ = 0, None, 1
    elif service in (MEETING_SIGNING, APP_INTEGRATION):
        yearly = catalog.yearly_service(service)
        if yearly is None:
            raise BillingRefused("not_on_sale")
        if years not in catalog.years:
            raise BillingRefused("bad_years")
        line = QuoteLine(kind="service", code=yearly.code, quantity=years,
                         amount_fen=yearly.price_per_year_fen * years)
        contracts, pack_code, years_ = 0, None, years
    else:
        raise BillingRefused("unknown_service")
    chat_payable = catalog.payable_in_chat(kind="service", edition=edition, total_fen=line.amount_fen)
    return Quote(lines=[line], total_fen=line.amount_fen, contracts=contracts, edition=edition,
                 years=years_, pack=pack_code, chat_payable=chat_payable, kind="service")


def line_service(line: QuoteLine) -> str | None:
    """The value-added service a quote line sells, if any."""
    if line.kind == "pack":
        return CONTRACT_PACK
    if line.kind == "report":
        return SIGNING_REPORT
    if line.kind == "service":
        return line.code
    return None
