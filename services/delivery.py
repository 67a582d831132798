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
    # Time adds up on the same edition; a new or higher edition starts now (R13 bills from purchase).
    start = enterprise.expires_at if in_effect and enterprise.edition == bought.code else now
    enterprise.edition = bought.code
    enterprise.expires_at = add_years(start, order.years)
    enterprise.contracts_left += order.contracts
    enterprise.delivered_orders.append(order.id)
