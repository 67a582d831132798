"""申请试用 (R14, R15, services.trials) on a real Redis: who may apply, one trial per
enterprise ever (even two at once), the lead record, and the end of a trial."""
from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from services.catalog import load_catalog
from services.clock import FixedClock
from services.enterprises import RedisEnterpriseDirectory, Role
from services.trials import TrialForm, TrialService, clean_name, trial_editions, trial_refusal

UTC = UTC
NOW = datetime(2026, 1, 5, 2, 0, tzinfo=UTC)
CATALOG = load_catalog()
ADMIN, MEMBER = "+8613800138000", "+8613800138001"


@pytest.fixture
def clock():
    return FixedClock(NOW)


@pytest.fixture
def directory(redis, clock):
    return RedisEnterpriseDirectory(redis, clock)


@pytest.fixture
def trials(redis, clock):
    return TrialService(redis, clock, CATALOG)


async def seeded(directory, *, edition="experience", verified=True):
    ent = await directory.add("深圳示例科技有限公司", verified=verified)
    await directory.add_member(ent.id, ADMIN, Role.SUPER_ADMIN)
    await directory.add_member(ent.id, MEMBER, Role.MEMBER)
    if edition != "experience":
        def mutate(e):
            e.edition, e.expires_at = edition, NOW + timedelta(days=100)
        ent = await directory.update(ent.id, mutate)
    return ent


def form(ent_id: str, edition: str = "professional") -> TrialForm:
    return TrialForm(enterprise_id=ent_id, edition=edition, confirmed=True, contact_name="张三",
                     contact_phone="+8613912345678", industry="finance", volume="1k_10k")


async def test_R14_R15_submitting_opens_a_7_day_trial_at_once_and_stores_the_lead(directory, trials):
    ent = await seeded(directory)
    outcome = await trials.start(form(ent.id), user_id=7, applicant_phone=ADMIN)

    assert outcome.status == "started"
    after = await directory.get(ent.id)
    assert after.trial_used is True
    assert (after.trial.edition, after.trial.started_at, after.trial.ends_at) == ("professional", NOW, NOW + timedelta(days=7))
    assert after.edition_in_effect(NOW) == "professional"
    assert after.edition == "experience" and after.expires_at is None  # what it bought is untouched
    lead = await trials.lead(after.trial.lead_id)
    assert (lead.contact_name, lead.contact_phone, lead.industry, lead.volume, lead.edition, lead.previous_edition) == (
        "张三", "+8613912345678", "finance", "1k_10k", "professional", "experience")
    assert [x.id for x in await trials.leads()] == [lead.id]


async def test_R14_one_trial_per_enterprise_ever(directory, trials, clock):
    ent = await seeded(directory)
    assert (await trials.start(form(ent.id), user_id=7, applicant_phone=ADMIN)).status == "started"
    clock.advance(days=30)  # long after it ended
    again = await trials.start(form(ent.id, "flagship"), user_id=7, applicant_phone=ADMIN)
    assert (again.status, again.reason) == ("refused", "used")
    assert len(await trials.leads()) == 1


async def test_R14_two_applications_at_the_same_instant_open_one_trial(directory, trials):
    ent = await seeded(directory)
    outcomes = await asyncio.gather(*(trials.start(form(ent.id, e), user_id=7, applicant_phone=ADMIN)
                                      for e in ("advanced", "professional", "flagship")))
    assert sorted(o.status for o in outcomes) == ["refused", "refused", "started"]
    assert len(await trials.leads()) == 1


@pytest.mark.parametrize(("edition_in_effect", "offered"), [
    ("experience", ["advanced", "professional", "flagship"]),
    ("advanced", ["professional", "flagship"]),
    ("professional", ["flagship"]),
    ("flagship", []),
])
async def test_R14_only_editions_above_the_one_in_effect(directory, edition_in_effect, offered):
    ent = await seeded(directory, edition=edition_in_effect)
    assert [e.code for e in trial_editions(ent, CATALOG, NOW)] == offered
    for code in ("advanced", "professional", "flagship"):
        refusal = trial_refusal(ent, code, CATALOG, NOW)
        assert (refusal is None) == (code in offered), (code, refusal)


async def test_R14_refusals(directory, trials):
    unverified = await seeded(directory, verified=False)
    assert (await trials.start(form(unverified.id), user_id=7, applicant_phone=ADMIN)).reason == "not_verified"
    flagship = await seeded(directory, edition="flagship")
    assert (await trials.start(form(flagship.id, "flagship"), user_id=7, applicant_phone=ADMIN)).reason == "not_higher"
    advanced = await seeded(directory, edition="advanced")
    assert (await trials.start(form(advanced.id, "advanced"), user_id=7, applicant_phone=ADMIN)).reason == "not_higher"
    # ours: the one chance is the enterprise's, taken by its super or billing admin
    assert (await trials.start(form(advanced.id), user_id=7, applicant_phone=MEMBER)).reason == "no_rights"
    assert (await trials.start(form(advanced.id), user_id=7, applicant_phone=None)).reason == "no_rights"
    incomplete = form(advanced.id).model_copy(update={"contact_phone": None})
    assert (await trials.start(incomplete, user_id=7, applicant_phone=ADMIN)).reason == "incomplete"
    assert await trials.leads() == []


async def test_R14_when_the_trial_ends_the_enterprise_is_back_on_what_it_had(directory, trials, clock):
    ent = await seeded(directory, edition="advanced")
    await trials.start(form(ent.id, "flagship"), user_id=7, applicant_phone=ADMIN)
    clock.advance(days=6, hours=23)
    assert await trials.end(ent.id, directory) is None  # not yet
    assert (await directory.get(ent.id)).edition_in_effect(clock.now()) == "flagship"
    clock.advance(hours=1)
    # Past its end the trial no longer counts, even before the scheduler closes it.
    assert (await directory.get(ent.id)).edition_in_effect(clock.now()) == "advanced"
    closed = await trials.end(ent.id, directory)
    assert closed.trial.ended_at == clock.now()
    assert (closed.edition, closed.expires_at) == ("advanced", NOW + timedelta(days=100))
    assert await trials.end(ent.id, directory) is None  # once


@pytest.mark.parametrize(("typed", "name"), [
    ("张三", "张三"),
    ("  Li   Si ", "Li Si"),
    ("王", None),  # too short
    ("12345", None),  # no letter
    ("/start", None),
    ("x" * 31, None),
])
def test_R15_contact_name_is_checked(typed, name):
    assert clean_name(typed) == name
