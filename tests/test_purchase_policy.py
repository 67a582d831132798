"""What a purchase becomes for the enterprise it is for (services.purchase_policy, R5, R18), and
R2's one rule for what the chat may take (Catalog.payable_in_chat)."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.catalog import Cart, load_catalog
from services.enterprises import Enterprise, Trial
from services.purchase_policy import plan_purchase

CATALOG = load_catalog()
NOW = datetime(2026, 1, 5, 2, 0, tzinfo=UTC)


def ent(edition: str = "experience", days: float | None = None, **fields) -> Enterprise:
    expires = NOW + timedelta(days=days) if days is not None else None
    return Enterprise(id="ent_1", name="Acme", verified=True, edition=edition, expires_at=expires, **fields)


def cart(edition: str, years: int = 1, pack: str | None = None) -> Cart:
    return Cart(edition=edition, years=years, pack=pack, pack_chosen=True)


@pytest.mark.parametrize(("on", "days", "buy", "kind", "total"), [
    (None, None, "advanced", "edition", 480_000),  # nobody known: a plain new edition
    ("experience", None, "flagship", "edition", 5_980_000),  # nothing in effect: list price
    ("advanced", -1, "advanced", "edition", 480_000),  # ran out yesterday: a new term
    ("advanced", 100, "advanced", "renewal", 480_000),  # the same edition: a renewal
    ("advanced", 365, "flagship", "upgrade", 5_500_000),  # higher: (59,800 − 4,800) × 365 ÷ 365
    ("advanced", 73, "professional", "upgrade", 300_000),  # (19,800 − 4,800) × 73 ÷ 365
    ("flagship", 10, "advanced", None, None),  # lower: refused
    ("professional", 10, "professional", "renewal", 1_980_000),
])
def test_the_plan_follows_what_the_enterprise_has(on, days, buy, kind, total):
    enterprise = None if on is None else ent(on, days)
    plan = plan_purchase(CATALOG, cart(buy), enterprise, NOW)
    assert plan.kind == kind
    assert (plan.quote.total_fen if plan.quote else None) == total
    assert plan.refused is (kind is None)
    if kind is None:
        assert plan.refusal == "downgrade" and plan.current_edition == "flagship"


def test_an_upgrade_keeps_the_expiry_and_says_what_it_was_priced_on():
    enterprise = ent("advanced", 200)
    plan = plan_purchase(CATALOG, cart("flagship", years=3), enterprise, NOW)
    assert plan.kind == "upgrade" and plan.quote.years == 0  # the years asked do not apply
    basis = plan.upgrade_basis()
    assert (basis.from_edition, basis.expires_at, basis.days_left) == ("advanced", enterprise.expires_at, 200)


def test_the_pack_asked_for_is_one_more_line_in_every_kind():
    for enterprise, kind in ((None, "edition"), (ent("advanced", 100), "renewal"), (ent("advanced", 365), "upgrade")):
        plan = plan_purchase(CATALOG, cart("advanced" if kind != "upgrade" else "flagship", pack="pack_1k"),
                             enterprise, NOW)
        assert plan.kind == kind
        assert plan.quote.lines[-1].kind == "pack" and plan.quote.pack == "pack_1k"
        assert plan.quote.total_fen == sum(line.amount_fen for line in plan.quote.lines)


def test_a_running_trial_is_not_what_the_enterprise_bought():
    trial = Trial(edition="flagship", started_at=NOW, ends_at=NOW + timedelta(days=7), previous_edition="experience",
                  lead_id="l1")
    plan = plan_purchase(CATALOG, cart("advanced"), ent(trial=trial), NOW)
    assert plan.kind == "edition"  # buying under a trial of a higher edition is no downgrade


@pytest.mark.parametrize(("kind", "edition", "total", "ok"), [
    ("edition", "advanced", 480_000, True),
    ("edition", "advanced", 5_000_001, False),  # over the chat limit
    ("edition", "professional", 1_980_000, False),  # never in chat
    ("renewal", "flagship", 5_980_000, False),
    ("upgrade", "professional", 100, False),  # an upgrade to a web-only edition
    ("service", "flagship", 400_000, True),  # a service names the edition for the record only
    ("service", "advanced", 5_000_001, False),
])
def test_R2_one_rule_for_what_the_chat_may_take(kind, edition, total, ok):
    assert CATALOG.payable_in_chat(kind=kind, edition=edition, total_fen=total) is ok
