"""Delivering a paid order to an enterprise account (R12): edition, expiry, contracts; and, for
the orders an enterprise places for itself (F7–F9), renewal, upgrade and value-added services.

Every kind re-checks, at delivery, that the enterprise is still as the order was priced for
(an upgrade's edition and expiry, a service's availability, R6–R8): what no longer fits is
refused with a reason and nothing changes."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from services.billing import days_left, line_service
from services.catalog import Catalog, Edition
from services.clock import add_years
from services.enterprises import FREE_EDITION, Enterprise
from services.value_added import CONTRACT_PACK, SIGNING_REPORT, availability

if TYPE_CHECKING:
    from services.order_records import Order


@dataclass(frozen=True)
class Conversion:
    """A lower edition's remaining time, converted into days of the higher one bound over it."""

    from_edition: str
    days_left: int
    credited_days: int


class DeliveryRefused(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def deliver(enterprise: Enterprise, order: Order, catalog: Catalog, now: datetime) -> Conversion | None:
    """Apply the order to the enterprise in place. Refuses a second delivery and a downgrade (R5).
    Returns the conversion of a lower edition's remaining time, when there was one."""
    conversion = None
    if order.id in enterprise.delivered_orders:
        raise DeliveryRefused("already_delivered")
    kind = order.kind.value
    if kind == "renewal":
        _deliver_renewal(enterprise, order, catalog, now)  # records the delivery itself
    elif kind == "upgrade":
        _deliver_upgrade(enterprise, order, now)
        enterprise.delivered_orders.append(order.id)
    elif kind == "service":
        _deliver_services(enterprise, order, now)
        enterprise.delivered_orders.append(order.id)
    else:
        conversion = _deliver_edition(enterprise, order, catalog, now)
    _end_superseded_trial(enterprise, catalog, order.paid_at or now)
    return conversion


def _end_superseded_trial(enterprise: Enterprise, catalog: Catalog, at: datetime) -> None:
    """Buying the trial's edition, or a higher one, ends the trial: what was bought is in effect."""
    trial = enterprise.running_trial(at)
    if trial is not None and catalog.rank(enterprise.paid_edition(at)) >= catalog.rank(trial.edition):
        trial.ended_at = at


def _deliver_renewal(enterprise: Enterprise, order: Order, catalog: Catalog, now: datetime) -> None:
    """版本续费 (R4): more time on the edition in effect. It must still be that edition (or have
    just run out, when the renewal starts at the purchase)."""
    if enterprise.paid_edition(order.paid_at or now) not in (order.edition, FREE_EDITION):
        raise DeliveryRefused("changed")
    _deliver_edition(enterprise, order, catalog, now)


def _deliver_upgrade(enterprise: Enterprise, order: Order, now: datetime) -> None:
    """升级版本 (R4, R5): the edition changes at once, the expiry stays, the prorated contracts are
    added. Priced on an edition and an expiry: if either changed since, the price is wrong."""
    basis = order.upgrade
    if basis is None:
        raise DeliveryRefused("changed")
    at = order.paid_at or now
    if enterprise.paid_edition(at) != basis.from_edition or enterprise.expires_at != basis.expires_at:
        raise DeliveryRefused("changed")
    enterprise.edition = order.edition
    enterprise.contracts_left += order.contracts


def _deliver_services(enterprise: Enterprise, order: Order, now: datetime) -> None:
    """增值服务 (F9): packs add contracts or reports; a yearly service runs on from its current end."""
    at = order.paid_at or now
    edition = enterprise.paid_edition(at)
    for line in order.lines:
        service = line_service(line)
        if service is None or not availability(service, edition, verified=enterprise.verified).available:
            raise DeliveryRefused("unavailable")
    for line in order.lines:
        service = line_service(line)
        if service == CONTRACT_PACK:
            enterprise.contracts_left += order.contracts
            enterprise.services[CONTRACT_PACK] = enterprise.services.get(CONTRACT_PACK, 0) + order.contracts
        elif service == SIGNING_REPORT:
            enterprise.services[SIGNING_REPORT] = enterprise.services.get(SIGNING_REPORT, 0) + line.units
        else:
            current = enterprise.subscriptions.get(line.code)
            start = current if current is not None and current > at else at
            enterprise.subscriptions[line.code] = add_years(start, line.quantity)


def _deliver_edition(enterprise: Enterprise, order: Order, catalog: Catalog, now: datetime) -> Conversion | None:
    """A new edition, bound to the enterprise (R12) or bought for it. The term starts at the
    purchase, bound or not (R13): binding late never lengthens it, and a term that has ended
    delivers nothing. Over what the enterprise has in effect:
    - the same edition: the years are added where its current term ends (time adds up);
    - a lower edition: its remaining time is converted, not lost (`converted_days`);
    - a higher edition: refused (no downgrade, R5)."""
    bought = catalog.edition(order.edition)
    if bought is None:
        raise DeliveryRefused("unknown_edition")
    purchased = order.paid_at or now
    in_effect = catalog.edition(enterprise.paid_edition(now))
    if in_effect is not None and in_effect.rank > bought.rank:
        raise DeliveryRefused("downgrade")
    conversion = None
    same_edition_runs_on = (
        enterprise.edition == bought.code
        and enterprise.expires_at is not None
        and enterprise.expires_at > purchased
    )
    if same_edition_runs_on:
        assert enterprise.expires_at is not None
        expiry = add_years(enterprise.expires_at, order.years)
    else:
        expiry = add_years(purchased, order.years)
        if in_effect is not None and 0 < in_effect.rank < bought.rank:
            credit = converted_days(enterprise, in_effect, bought, now)
            conversion = Conversion(in_effect.code, days_left(enterprise.expires_at, now), credit)
            expiry += timedelta(days=credit)
    if expiry <= now:
        raise DeliveryRefused("term_over")
    enterprise.edition = bought.code
    enterprise.expires_at = expiry
    enterprise.contracts_left += order.contracts
    packs = sum(pack.contracts for line in order.lines if line.kind == "pack"
                for pack in [catalog.pack(line.code)] if pack is not None)
    if packs:  # 合同加量包 bought with the edition: shown with the enterprise's services (首页)
        enterprise.services[CONTRACT_PACK] = enterprise.services.get(CONTRACT_PACK, 0) + packs
    enterprise.delivered_orders.append(order.id)
    return conversion


def converted_days(enterprise: Enterprise, current: Edition, bought: Edition, now: datetime) -> int:
    """Binding a higher edition over a lower one still running: what is left of the lower one
    keeps its value, credited as days of the higher one at the two list prices
    (days left × lower price ÷ higher price, rounded down), added after the new term."""
    if bought.price_per_year_fen <= 0:
        return 0
    return days_left(enterprise.expires_at, now) * current.price_per_year_fen // bought.price_per_year_fen


def delivery_problem(enterprise: Enterprise, order: Order, catalog: Catalog, now: datetime) -> str | None:
    """Why delivering the order to the enterprise now would be refused, if it would (a dry run
    on copies: nothing changes)."""
    probe = order.model_copy(update={"paid_at": order.paid_at or now})
    try:
        deliver(enterprise.model_copy(deep=True), probe, catalog, now)
    except DeliveryRefused as refusal:
        return refusal.reason
    return None
