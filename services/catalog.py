"""The catalog (editions, add-on packs, durations, the chat limit) and cart pricing.

The data lives in `config/catalog.toml`; this module validates it and prices carts.
Money is integer fen throughout.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import ErrorDetails

from services.config_files import describe_error, load_toml_model

DEFAULT_CATALOG_PATH = Path(__file__).resolve().parent.parent / "config" / "catalog.toml"


class CatalogError(ValueError):
    """The catalog file is invalid; the message names the field."""


class _FieldProblem(ValueError):
    """A cross-field problem found after the fields parsed; `loc` names the offending field."""

    def __init__(self, loc: str, message: str) -> None:
        super().__init__(f"{loc}: {message}")
        self.loc = loc
        self.message = message


# Strict: TOML has real integers and booleans, so "4800" (text) or 4800.5 for a price is a mistake
# to report, not a value to coerce.
_STRICT = ConfigDict(strict=True)


class Edition(BaseModel):
    model_config = _STRICT

    code: str = Field(pattern=r"^[a-z_]{1,20}$")
    rank: int = Field(ge=0)
    price_per_year_fen: int = Field(ge=0)
    contracts_per_year: int = Field(ge=0)
    sellable: bool
    chat_payable: bool
    price_per_year_stars: int | None = Field(default=None, ge=0)  # Telegram Stars (XTR), when the chat takes them


class AddonPack(BaseModel):
    model_config = _STRICT

    code: str = Field(pattern=r"^[a-z0-9_]{1,20}$")
    contracts: int = Field(gt=0)
    price_fen: int = Field(gt=0)
    price_stars: int | None = Field(default=None, gt=0)


class ReportPack(BaseModel):
    """签署报告 (signing report) is sold in packs of reports (F9)."""

    model_config = _STRICT

    code: str = Field(pattern=r"^[a-z0-9_]{1,20}$")
    reports: int = Field(gt=0)
    price_fen: int = Field(gt=0)
    price_stars: int | None = Field(default=None, gt=0)


# The yearly value-added services the rules know (R6, R8); their names come from the locale.
YEARLY_SERVICE_CODES = ("meeting_signing", "app_integration")


class YearlyService(BaseModel):
    """腾讯会议·在线签约 and 第三方应用集成: bought by the year, for one of `years` (F9)."""

    model_config = _STRICT

    code: str = Field(pattern=r"^[a-z_]{1,20}$")
    price_per_year_fen: int = Field(gt=0)
    price_per_year_stars: int | None = Field(default=None, gt=0)

    @field_validator("code")
    @classmethod
    def _known(cls, code: str) -> str:
        if code not in YEARLY_SERVICE_CODES:
            raise ValueError(f"unknown yearly service {code!r}; known: {', '.join(YEARLY_SERVICE_CODES)}")
        return code


class Catalog(BaseModel):
    model_config = _STRICT

    currency: str = Field(pattern=r"^[A-Z]{3}$")
    chat_payment_limit_fen: int = Field(gt=0)
    order_ttl_minutes: int = Field(gt=0, le=24 * 60)
    # An approved pre-checkout holds its order this long for the payment that follows (R20).
    payment_hold_minutes: int = Field(default=15, gt=0, le=24 * 60)
    years: list[int] = Field(min_length=1)
    editions: list[Edition] = Field(min_length=1)
    addon_packs: list[AddonPack] = Field(default_factory=list)
    # --- what enterprises buy for themselves (F7–F10): value-added services, upgrade, trials, reminders
    report_packs: list[ReportPack] = Field(default_factory=list)
    yearly_services: list[YearlyService] = Field(default_factory=list)
    # 升级版本 (R4, R5): the price difference and the quota difference are prorated over the
    # days left of the edition in effect, out of this many days a year (services.billing).
    upgrade_days_per_year: int = Field(default=365, ge=360, le=366)
    trial_days: int = Field(default=7, gt=0, le=90)  # 申请试用 (R14)
    trial_reminder_days: list[int] = Field(default_factory=lambda: [1])  # before a trial ends
    edition_reminder_days: list[int] = Field(default_factory=lambda: [30, 7, 1])  # before an edition expires
    trial_industries: list[str] = Field(default_factory=lambda: ["other"])  # codes; labels in the locale
    trial_volumes: list[str] = Field(default_factory=lambda: ["other"])  # codes; labels in the locale

    @field_validator("trial_reminder_days", "edition_reminder_days")
    @classmethod
    def _reminder_days(cls, days: list[int]) -> list[int]:
        if any(d < 1 or d > 366 for d in days) or len(set(days)) != len(days):
            raise ValueError("reminder days must be distinct whole days between 1 and 366")
        return sorted(days, reverse=True)

    @field_validator("trial_industries", "trial_volumes")
    @classmethod
    def _codes(cls, codes: list[str]) -> list[str]:
        if not codes or len(set(codes)) != len(codes) or any(
            not (1 <= len(c) <= 20 and c.replace("_", "").isalnum() and c.isascii()) for c in codes
        ):
            raise ValueError("must be a non-empty list of distinct codes (a-z, 0-9, _)")
        return codes

    @field_validator("years")
    @classmethod
    def _years_in_range(cls, years: list[int]) -> list[int]:
        if any(y < 1 or y > 10 for y in years) or len(set(years)) != len(years):
            raise ValueError("years must be distinct whole years between 1 and 10")
        return sorted(years)

    @model_validator(mode="after")
    def _consistent(self) -> Catalog:
        # Each problem names the offending field (editions.3.code), like a field error does.
        _unique("editions", "code", [e.code for e in self.editions])
        _unique("editions", "rank", [e.rank for e in self.editions])
        for i, edition in enumerate(self.editions):
            if edition.sellable and edition.price_per_year_fen == 0:
                raise _FieldProblem(
                    f"editions.{i}.price_per_year_fen",
                    f"edition {edition.code!r} is sellable but has no price",
                )
        _unique("addon_packs", "code", [p.code for p in self.addon_packs])
        _unique("report_packs", "code", [p.code for p in self.report_packs])
        _unique("yearly_services", "code", [s.code for s in self.yearly_services])
        self._stars_everywhere_or_nowhere()
        return self

    def _stars_everywhere_or_nowhere(self) -> None:
        """Star prices are all there or all absent: an invoice in Stars must price every line."""
        priced: list[tuple[str, int | None]] = [
            *((f"editions.{i}.price_per_year_stars", e.price_per_year_stars)
              for i, e in enumerate(self.editions) if e.sellable),
            *((f"addon_packs.{i}.price_stars", p.price_stars) for i, p in enumerate(self.addon_packs)),
            *((f"report_packs.{i}.price_stars", p.price_stars) for i, p in enumerate(self.report_packs)),
            *((f"yearly_services.{i}.price_per_year_stars", y.price_per_year_stars)
              for i, y in enumerate(self.yearly_services)),
        ]
        if any(stars is not None for _, stars in priced):
            for loc, stars in priced:
                if stars is None or stars <= 0:
                    raise _FieldProblem(loc, "star prices are set elsewhere in the catalog: this one needs one too (> 0)")

    @property
    def has_star_prices(self) -> bool:
        return any(e.price_per_year_stars for e in self.editions)

    def line_stars(self, line: QuoteLine) -> int | None:
        """A line's price in Telegram Stars: its item's star price for its list amount, and for a
        derived amount (an upgrade's proration, an agent's price) the item's star-to-fen ratio,
        rounded up to a whole star. None when the catalog has no star prices."""
        fen: int | None
        stars: int | None
        if line.kind in ("edition", "upgrade"):
            edition = self.edition(line.code)
            fen, stars = (edition.price_per_year_fen, edition.price_per_year_stars) if edition else (None, None)
        elif line.kind == "pack":
            pack = self.pack(line.code)
            fen, stars = (pack.price_fen, pack.price_stars) if pack else (None, None)
        elif line.kind == "report":
            report = self.report_pack(line.code)
            fen, stars = (report.price_fen, report.price_stars) if report else (None, None)
        elif line.kind == "service":
            yearly = self.yearly_service(line.code)
            fen, stars = (yearly.price_per_year_fen, yearly.price_per_year_stars) if yearly else (None, None)
        else:
            return None
        if stars is None or not fen:
            return None
        return -(-line.amount_fen * stars // fen)

    def stars_for(self, lines: Sequence[QuoteLine]) -> int | None:
        """The total in Stars of an order's lines; None unless every line has a star price."""
        amounts = [self.line_stars(line) for line in lines]
        if not amounts or any(a is None for a in amounts):
            return None
        return sum(a for a in amounts if a is not None)

    def edition(self, code: str) -> Edition | None:
        return next((e for e in self.editions if e.code == code), None)

    def pack(self, code: str | None) -> AddonPack | None:
        return next((p for p in self.addon_packs if p.code == code), None)

    @property
    def sellable_editions(self) -> list[Edition]:
        return sorted((e for e in self.editions if e.sellable), key=lambda e: e.rank)

    def report_pack(self, code: str | None) -> ReportPack | None:
        return next((p for p in self.report_packs if p.code == code), None)

    def yearly_service(self, code: str | None) -> YearlyService | None:
        return next((s for s in self.yearly_services if s.code == code), None)

    def rank(self, code: str | None) -> int:
        """An edition's rank; an unknown code counts as the free starting edition (0)."""
        edition = self.edition(code or "")
        return edition.rank if edition else 0

    @property
    def free_edition(self) -> Edition:
        """The edition every enterprise starts on and returns to (体验版): the lowest rank."""
        return min(self.editions, key=lambda e: e.rank)

    def payable_in_chat(self, *, kind: str, edition: str, total_fen: int) -> bool:
        """R2, the one place it is decided: the chat never takes an edition flagged as web-only
        (专业版, 旗舰版: a new one, its renewal or an upgrade to it), nor any order above the
        chat payment limit. A value-added service order names the enterprise's edition for the
        record only, so only the limit applies to it."""
        if total_fen > self.chat_payment_limit_fen:
            return False
        if kind == "service":
            return True
        found = self.edition(edition)
        return found is None or found.chat_payable


def _unique(table: str, name: str, values: Sequence[str | int]) -> None:
    seen: set[str | int] = set()
    for i, value in enumerate(values):
        if value in seen:
            raise _FieldProblem(f"{table}.{i}.{name}", f"{name} {value!r} is used twice; it must be unique")
        seen.add(value)


def _describe(err: ErrorDetails) -> str:
    problem = (err.get("ctx") or {}).get("error")
    if isinstance(problem, _FieldProblem):
        return f"{problem.loc}: {problem.message}"
    return describe_error(err)


def load_catalog(path: Path | str = DEFAULT_CATALOG_PATH) -> Catalog:
    """Read and validate the catalog; any problem raises CatalogError naming the field."""
    return load_toml_model(path, Catalog, CatalogError, "catalog", _describe)


class Cart(BaseModel):
    """What the buyer has picked so far (F2). Codes only; names come from the locale."""

    edition: str | None = None
    years: int | None = None
    pack: str | None = None  # None: no add-on pack
    pack_chosen: bool = False


class QuoteLine(BaseModel):
    # "edition" (quantity: years), "pack" (合同加量包, 1), "upgrade" (code: the edition upgraded
    # to, quantity: days left), "report" (签署报告 pack, 1; units: reports), "service" (a yearly
    # value-added service, quantity: years)
    kind: str
    code: str
    quantity: int  # years for an edition, 1 for a pack
    amount_fen: int
    units: int = 0  # reports in a 签署报告 pack


class Quote(BaseModel):
    lines: list[QuoteLine]
    total_fen: int
    contracts: int
    edition: str
    years: int
    pack: str | None
    chat_payable: bool  # False: R2 sends the buyer to consultation or the web
    # What the order does (services.orders.OrderKind): a new edition, a renewal, an upgrade or
    # a value-added service. services.billing prices the last three.
    kind: str = "edition"


def quote(catalog: Catalog, cart: Cart) -> Quote:
    """Price a complete cart. Raises ValueError when the cart is incomplete or unknown."""
    if not cart.pack_chosen:
        raise ValueError("the add-on pack step is not done yet (pack_chosen is False)")
    edition = catalog.edition(cart.edition or "")
    if edition is None or not edition.sellable:
        raise ValueError(f"not a sellable edition: {cart.edition!r}")
    if cart.years not in catalog.years:
        raise ValueError(f"not an offered duration: {cart.years!r}")
    lines = [
        QuoteLine(
            kind="edition",
            code=edition.code,
            quantity=cart.years,
            amount_fen=edition.price_per_year_fen * cart.years,
        )
    ]
    contracts = edition.contracts_per_year * cart.years
    pack = catalog.pack(cart.pack) if cart.pack else None
    if cart.pack and pack is None:
        raise ValueError(f"not an add-on pack: {cart.pack!r}")
    if pack:
        lines.append(QuoteLine(kind="pack", code=pack.code, quantity=1, amount_fen=pack.price_fen))
        contracts += pack.contracts
    total = sum(line.amount_fen for line in lines)
    return Quote(
        lines=lines,
        total_fen=total,
        contracts=contracts,
        edition=edition.code,
        years=cart.years,
        pack=pack.code if pack else None,
        chat_payable=catalog.payable_in_chat(kind="edition", edition=edition.code, total_fen=total),
    )


def format_amount(amount: int, currency: str) -> str:
    """An amount in its currency: fen as ¥4,800.00, Telegram Stars (XTR) as 48,000 ⭐."""
    return f"{amount:,} ⭐" if currency == "XTR" else format_fen(amount)


def format_fen(amount_fen: int) -> str:
    """¥4,800.00 — yuan with thousands separators and two decimals; -¥0.01 below zero."""
    sign = "-" if amount_fen < 0 else ""
    yuan, fen = divmod(abs(amount_fen), 100)
    return f"{sign}¥{yuan:,}.{fen:02d}"
