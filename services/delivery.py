"""Delivering a paid edition order to an enterprise account (R12): edition, expiry, contracts."""
from __future__ import annotations

import calendar
from datetime import datetime
from typing import TYPE_CHECKING

from services.catalog import Catalog
from services.enterprises import Enterprise

if TYPE_CHECKING:
    from services.orders import Order


class DeliveryRefused(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def add_years(moment: datetime, years: int) -> datetime:
    year = moment.year + years
    day = min(moment.day, calendar.monthrange(year, moment.month)[1])  # 29 Feb → 28 Feb
    return moment.replace(year=year, day=day)


def deliver(enterprise: Enterprise, order: "Order", catalog: Catalog, now: datetime) -> None:
    """Apply the order to the enterprise in place. Refuses a second delivery and a downgrade (R5)."""
    if order.id in enterprise.delivered_orders:
        raise DeliveryRefused("already_delivered")
    bought = catalog.edition(order.edition)
    current = catalog.edition(enterprise.edition)
    if bought is None:
        raise DeliveryRefused("unknown_edition")
    in_effect = enterprise.expires_at is not None and enterprise.expires_at > now
    if current is not None and in_effect and current.rank > bought.rank:
        raise DeliveryRefused("downgrade")
    # R13: the term starts at the purchase (payment), bound or not; binding late does not
    # lengthen it. On the same edition time adds up: the new term starts where the current one
    # ends, when that is later. A new or higher edition starts at the purchase.
    purchased = order.paid_at or now
    same_edition_runs_on = (
        enterprise.edition == bought.code
        and enterprise.expires_at is not None
        and enterprise.expires_at > purchased
    )
    start = enterprise.expires_at if same_edition_runs_on else purchased
    enterprise.edition = bought.code
    enterprise.expires_at = add_years(start, order.years)
    enterprise.contracts_left += order.contracts
    enterprise.delivered_orders.append(order.id)
