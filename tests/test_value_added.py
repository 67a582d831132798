"""增值服务 availability (R6–R8, services.value_added): the whole edition × service table.

The expected table is the guide's rule, written out cell by cell:
- under 体验版 only 签署报告 and 腾讯会议·在线签约 (R6);
- 合同加量包 once an edition has been bought (R7);
- 第三方应用集成 only on 专业版 and 旗舰版 (R8)."""
from __future__ import annotations

import pytest

from services.value_added import SERVICES, all_availability, availability

# edition -> service -> (available, rule, reason, unlock)
TABLE = {
    "experience": {
        "contract_pack": (False, "R7", "needs_edition", "buy_edition"),
        "signing_report": (True, "R6", None, None),
        "meeting_signing": (True, "R6", None, None),
        "app_integration": (False, "R8", "needs_professional", "upgrade"),
    },
    "advanced": {
        "contract_pack": (True, "R7", None, None),
        "signing_report": (True, "R6", None, None),
        "meeting_signing": (True, "R6", None, None),
        "app_integration": (False, "R8", "needs_professional", "upgrade"),
    },
    "professional": {
        "contract_pack": (True, "R7", None, None),
        "signing_report": (True, "R6", None, None),
        "meeting_signing": (True, "R6", None, None),
        "app_integration": (True, "R8", None, None),
    },
    "flagship": {
        "contract_pack": (True, "R7", None, None),
        "signing_report": (True, "R6", None, None),
        "meeting_signing": (True, "R6", None, None),
        "app_integration": (True, "R8", None, None),
    },
}
CELLS = [(edition, service, *TABLE[edition][service]) for edition in TABLE for service in SERVICES]


@pytest.mark.parametrize(("edition", "service", "available", "rule", "reason", "unlock"), CELLS)
def test_R6_R7_R8_availability_edition_by_service(edition, service, available, rule, reason, unlock):
    a = availability(service, edition)
    assert (a.available, a.rule, a.reason, a.unlock) == (available, rule, reason, unlock)


def test_R6_under_experience_exactly_two_services_can_be_bought():
    assert [a.service for a in all_availability("experience") if a.available] == ["signing_report", "meeting_signing"]


def test_R8_third_party_integration_exactly_on_professional_and_flagship():
    assert [e for e in TABLE if availability("app_integration", e).available] == ["professional", "flagship"]


def test_every_service_is_listed_never_hidden_each_refusal_with_a_reason_and_an_unlock():
    for edition in TABLE:
        offers = all_availability(edition)
        assert [a.service for a in offers] == list(SERVICES)
        for a in offers:
            assert a.available or (a.reason and a.unlock)


@pytest.mark.parametrize("service", SERVICES)
def test_R12_an_unverified_enterprise_buys_nothing_and_is_told_to_verify(service):
    a = availability(service, "flagship", verified=False)
    assert (a.available, a.reason, a.unlock) == (False, "not_verified", "verify")


def test_an_unknown_service_is_an_error_not_a_silent_no():
    with pytest.raises(ValueError):
        availability("cloud_storage", "advanced")
