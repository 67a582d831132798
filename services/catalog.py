"""The catalog (editions, add-on packs, durations, the chat limit) and cart pricing.

The data lives in `config/catalog.toml`; this module validates it and prices carts.
Money is integer fen throughout.
"""
from __future__ import annotations

import tomllib
from pathlib import Path

from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

DEFAULT_CATALOG_PATH = Path(__file__).resolve().parent.parent / "config" / "catalog.toml"


class CatalogError(ValueError):
    """The catalog file is invalid; the message names the field."""


class Edition(BaseModel):
    code: str = Field(pattern=r"^[a-z_]{1,20}$")
    rank: int = Field(ge=0)
    price_per_year_fen: int = Field(ge=0)
    contracts_per_year: int = Field(ge=0)
    sellable: bool
    chat_payable: bool


class AddonPack(BaseModel):
    code: str = Field(pattern=r"^[a-z0-9_]{1,20}$")
    contracts: int = Field(gt=0)
    price_fen: int = Field(gt=0)


class Catalog(BaseModel):
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
        codes = [e.code for e in self.editions]
        if len(set(codes)) != len(codes):
            raise ValueError("edition codes must be unique")
        ranks = [e.rank for e in self.editions]
        if len(set(ranks)) != len(ranks):
            raise ValueError("edition ranks must be unique")
        for edition in self.editions:
            if edition.sellable and edition.price_per_year_fen == 0:
                raise ValueError(f"edition {edition.code!r} is sellable but has no price")
        if len({p.code for p in self.addon_packs}) != len(self.addon_packs):
            raise ValueError("add-on pack codes must be unique")
        return self

    def edition(self, code: str) -> Edition | None:
        return next((e for e in self.editions if e.code == code), None)

    def pack(self, code: str | None) -> AddonPack | None:
        return next((p for p in self.addon_packs if p.code == code), None)

    @property
    def sellable_editions(self) -> list[Edition]:
        return sorted((e for e in self.editions if e.sellable), key=lambda e: e.rank)


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
        problems = "; ".join(
            f"{'.'.join(str(part) for part in err['loc']) or '(top)'}: {err['msg']}"
            for err in exc.errors()
        )
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
    """¥4,800.00 — yuan with thousands separators and two decimals."""
    yuan, fen = divmod(amount_fen, 100)
    return f"¥{yuan:,}.{fen:02d}"
