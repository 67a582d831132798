"""What a purchase becomes for the enterprise it is for (R5, R18).

A buyer asks for an edition, a number of years and maybe an add-on pack. When the enterprise
the purchase is for is known before payment (the verified phone's enterprise, an admin's own
enterprise, the enterprise whose 安全手机 was verified on the web), what it already has decides
what it buys:

- nothing in effect (体验版, or its edition ran out): the edition, for the years asked, at the
  list price;
- the same edition in effect: a renewal (版本续费), the years added to the current expiry;
- a higher edition: an upgrade (升级版本) priced by its rule (services.billing: the annual
  difference for the days left, the expiry unchanged); the years asked do not apply, since the
  upgrade runs to the current expiry;
- a lower edition: refused before any payment (no downgrade, R5).
An add-on pack asked for is one more line in every case. A running trial is not a purchase:
what counts is the edition bought and in effect.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Literal

from services.billing import BillingRefused, UpgradeQuote, new_edition_quote, renewal_quote, upgrade_quote
from services.catalog import Cart, Catalog, Quote, QuoteLine, quote
from services.enterprises import FREE_EDITION, Enterprise
from services.orders import UpgradeBasis

PlanKind = Literal["edition", "renewal", "upgrade"]


@dataclass(frozen=True)
class PurchasePlan:
    """What the cart is for one enterprise: a kind and its quote, or a refusal."""

    kind: PlanKind | None = None  # None when refused
    quote: Quote | None = None
    upgrade: UpgradeQuote | None = None  # an upgrade: its calculation
    refusal: str | None = None  # "downgrade"
    current_edition: str = FREE_EDITION  # the bought edition in effect
    current_expiry: datetime | None = None

    @property
    def refused(self) -> bool:
        return self.refusal is not None

    def upgrade_basis(self) -> UpgradeBasis | None:
        """What an upgrade order keeps, so that delivery refuses it if the enterprise changed."""
        u = self.upgrade
        return UpgradeBasis(from_edition=u.from_edition, expires_at=u.expires_at, days_left=u.days_left) if u else None


def plan_purchase(catalog: Catalog, cart: Cart, enterprise: Enterprise | None, now: datetime) -> PurchasePlan:
    """The cart priced for `enterprise` (None: for nobody known yet, a plain new edition).
    Raises ValueError for a cart that is not complete, as `catalog.quote` does."""
    listed = quote(catalog, cart)
    if enterprise is None:
        return PurchasePlan(kind="edition", quote=listed)
    current = enterprise.paid_edition(now)
    expiry = enterprise.paid_expiry(now)
    base = PurchasePlan(current_edition=current, current_expiry=expiry)
    wanted, have = catalog.rank(listed.edition), catalog.rank(current)
    if current == FREE_EDITION:
        priced = new_edition_quote(catalog, listed.edition, listed.years)
        return replace(base, kind="edition", quote=_with_pack(catalog, priced, listed))
    if wanted < have:
        return replace(base, refusal="downgrade")
    if wanted == have:
        priced = renewal_quote(catalog, listed.edition, listed.years)
        return replace(base, kind="renewal", quote=_with_pack(catalog, priced, listed))
    try:
        upgrade = upgrade_quote(catalog, current, listed.edition, expiry, now)
    except BillingRefused as refusal:  # the edition ran out this very day: nothing to prorate
        if refusal.reason != "expired":
            raise
        priced = new_edition_quote(catalog, listed.edition, listed.years)
        return replace(base, kind="edition", quote=_with_pack(catalog, priced, listed))
    return replace(base, kind="upgrade", quote=_with_pack(catalog, upgrade.quote(), listed), upgrade=upgrade)


def _with_pack(catalog: Catalog, priced: Quote, listed: Quote) -> Quote:
    """The plan's quote plus the add-on pack line the buyer asked for, if any."""
    packs: list[QuoteLine] = [line for line in listed.lines if line.kind == "pack"]
    if not packs:
        return priced
    pack = catalog.pack(listed.pack)
    lines = [*priced.lines, *packs]
    total = sum(line.amount_fen for line in lines)
    return priced.model_copy(update={
        "lines": lines, "total_fen": total, "pack": listed.pack,
        "contracts": priced.contracts + (pack.contracts if pack else 0),
        "chat_payable": catalog.payable_in_chat(kind=priced.kind, edition=priced.edition, total_fen=total),
    })
