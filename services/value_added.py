"""增值服务 value-added services (F9): which of the four an enterprise may buy, and why not.

Pure functions, table-tested (tests/test_value_added.py). The rules (docs/rules.md):
- R6 Under 体验版 only 签署报告 and 腾讯会议·在线签约 can be bought.
- R7 合同加量包 can be bought once any edition has been bought (and is in effect: an enterprise
  whose edition ran out is back on 体验版, where R6 applies).
- R8 第三方应用集成 only for 专业版 and 旗舰版.
*(ours)* The edition that counts is the one bought and in effect: a running trial (R14) is not
a purchase and unlocks nothing. Purchases for an enterprise need it verified (as binding does,
R12); an unverified one is told to verify first.

An unavailable service is never hidden: `Availability` says which rule refuses it and what
unlocks it, and the screen shows both.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

CONTRACT_PACK = "contract_pack"  # 合同加量包 (the catalog's add-on packs)
SIGNING_REPORT = "signing_report"  # 签署报告 (sold in packs)
MEETING_SIGNING = "meeting_signing"  # 腾讯会议·在线签约 (yearly)
APP_INTEGRATION = "app_integration"  # 第三方应用集成 (yearly)
SERVICES = (CONTRACT_PACK, SIGNING_REPORT, MEETING_SIGNING, APP_INTEGRATION)

FREE_EDITION = "experience"  # 体验版
EXPERIENCE_SERVICES = (SIGNING_REPORT, MEETING_SIGNING)  # R6
APP_INTEGRATION_EDITIONS = ("professional", "flagship")  # R8

Reason = Literal["not_verified", "needs_edition", "needs_professional"]
Unlock = Literal["verify", "buy_edition", "upgrade"]


@dataclass(frozen=True)
class Availability:
    service: str
    available: bool
    rule: str  # the rule that decided: R6, R7, R8 (or R12 for verification)
    reason: Reason | None = None  # why it cannot be bought
    unlock: Unlock | None = None  # what makes it available


def availability(service: str, edition: str, *, verified: bool = True) -> Availability:
    """May an enterprise whose bought edition in effect is `edition` buy `service`?"""
    if service not in SERVICES:
        raise ValueError(f"unknown value-added service {service!r}")
    if not verified:
        return Availability(service, False, "R12", "not_verified", "verify")
    if service == APP_INTEGRATION:
        if edition in APP_INTEGRATION_EDITIONS:
            return Availability(service, True, "R8")
        # On 体验版 R6 refuses it as well; R8 says what unlocks it.
        return Availability(service, False, "R8", "needs_professional", "upgrade")
    if edition == FREE_EDITION:
        if service in EXPERIENCE_SERVICES:
            return Availability(service, True, "R6")
        return Availability(service, False, "R7", "needs_edition", "buy_edition")  # 合同加量包
    return Availability(service, True, "R7" if service == CONTRACT_PACK else "R6")


def all_availability(edition: str, *, verified: bool = True) -> list[Availability]:
    """The four services in the catalogue's order, each with its availability."""
    return [availability(service, edition, verified=verified) for service in SERVICES]
