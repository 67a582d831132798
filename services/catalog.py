"""The catalog (editions, add-on packs, durations, the chat limit) and cart pricing.

The data lives in `config/catalog.toml`; this module validates it and prices carts.
Money is integer fen throughout.
"""
from __future__ import annotations

import tomllib
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

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


class AddonPack(BaseModel):
    model_config = _STRICT

    code: str = Field(pattern=r"^[a-z0-9_]{1,20}$")
    contracts: int = Field(gt=0)
    price_fen: int = Field(gt=0)


class Catalog(BaseModel):
    model_config = _STRICT

    currency: str = Field(pattern=r"^[A-Z]{3}$")
    chat_payment_limit_fen: int = Field(gt=0)
    order_ttl_minutes: int = Field(gt=0, le=24 * 60)
    years: list[int] = Field(min_length=1)
    editions: list[Edition] = Field(min_length=1)
    addon_packs: list[AddonPack] = Field(default_factory=list)

    @field_validator("years")
    @classmethod
    def _years_in_range(cls, years: list[int]) -> list[int]:
        if any(y < 1 or y > 10 for y in years) or len(set(years)) != len(years):
            raise ValueError("years must be distinct whole years between 1 and 10")
        return sorted(years)

    @model_validator(mode="after")
    def _consistent(self) -> "Catalog":
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
        return self

    def edition(self, code: str) -> Edition | None:
        return next((e for e in self.editions if e.code == code), None)

    def pack(self, code: str | None) -> AddonPack | None:
        return next((p for p in self.addon_packs if p.code == code), None)

    @property
    def sellable_editions(self) -> list[Edition]:
        return sorted((e for e in self.editions if e.sellable), key=lambda e: e.rank)


def _unique(table: str, name: str, values: list) -> None:
    seen: set = set()
    for i, value in enumerate(values):
        if value in seen:
            raise _FieldProblem(f"{table}.{i}.{name}", f"{name} {value!r} is used twice; it must be unique")
        seen.add(value)


def _describe(err: dict) -> str:
    problem = (err.get("ctx") or {}).get("error")
    if isinstance(problem, _FieldProblem):
        return f"{problem.loc}: {problem.message}"
    return f"{'.'.join(str(part) for part in err['loc']) or '(top)'}: {err['msg']}"


def load_catalog(path: Path | str = DEFAULT_CATALOG_PATH) -> Catalog:
    """Read and validate the catalog; any problem raises CatalogError naming the field."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CatalogError(f"catalog file not found: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise CatalogError(f"catalog file {path} is not valid TOML: {exc}") from None
    try:
        return Catalog.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(_describe(err) for err in exc.errors())
        raise CatalogError(f"catalog {path} is invalid: {problems}") from None


class Cart(BaseModel):
    """What the buyer has picked so far (F2). Codes only; names come from the locale."""

    edition: str | None = None
    years: int | None = None
    pack: str | None = None  # None: no add-on pack
    pack_chosen: bool = False


class QuoteLine(BaseModel):
    kind: str  # "edition" or "pack"
    code: str
    quantity: int  # years for an edition, 1 for a pack
    amount_fen: int


class Quote(BaseModel):
    lines: list[QuoteLine]
    total_fen: int
    contracts: int
    edition: str
    years: int
    pack: str | None
    chat_payable: bool  # False: R2 sends the buyer to consultation or the web


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
        chat_payable=edition.chat_payable and total <= catalog.chat_payment_limit_fen,
    )


def format_fen(amount_fen: int) -> str:
    """¥4,800.00 — yuan with thousands separators and two decimals; -¥0.01 below zero."""
    sign = "-" if amount_fen < 0 else ""
    yuan, fen = divmod(abs(amount_fen), 100)
    return f"{sign}¥{yuan:,}.{fen:02d}"
