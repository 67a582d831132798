"""申请试用 trials (R14, R15, F10).

- Only verified enterprises; only an edition above the one bought and in effect; 7 days
  (`trial_days` in config/catalog.toml); one trial per enterprise, ever.
- The application (contact name, contact phone verified by SMS code, industry, estimated
  yearly signing volume) is kept as a lead record for sales.
- Submitting opens the trial at once, in the same transaction that records the lead and marks
  the enterprise's one chance as used. While it runs the trial's edition is in effect; when it
  ends (services.scheduler closes it) the enterprise is back on what it had: the trial never
  touched the bought edition, its expiry or its contracts.
*(ours)* Applying for an enterprise takes its super admin or billing admin, like buying for it:
the chance is the enterprise's, once.
"""
from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from pydantic import BaseModel
from redis.asyncio import Redis

from services import keys
from services.catalog import Catalog, Edition
from services.clock import Clock
from services.enterprises import Enterprise, EnterpriseDirectory, EnterpriseNotFound, Trial
from services.redis_text import text
from services.text_input import TextRefused, clean_line
from services.transactions import Decision, Writes, transact

log = logging.getLogger(__name__)

NAME_MIN, NAME_MAX = 2, 30


class TrialForm(BaseModel):
    """The application as it is being filled in (kept in the conversation's session)."""

    enterprise_id: str | None = None
    edition: str | None = None
    confirmed: bool = False  # the user confirmed the edition, told there is one chance
    contact_name: str | None = None
    contact_phone: str | None = None  # verified by SMS code, E.164
    phone_pending: str | None = None  # a code was sent here
    industry: str | None = None
    volume: str | None = None
    reviewing: bool = False  # a correction from the review goes back to the review

    def complete(self) -> bool:
        return self.application() is not None

    def application(self) -> Application | None:
        """The application as submitted: every field filled in and the edition confirmed."""
        if not (self.enterprise_id and self.edition and self.confirmed and self.contact_name
                and self.contact_phone and self.industry and self.volume):
            return None
        return Application(self.enterprise_id, self.edition, self.contact_name, self.contact_phone,
                           self.industry, self.volume)


@dataclass(frozen=True)
class Application:
    """A complete TrialForm."""

    enterprise_id: str
    edition: str
    contact_name: str
    contact_phone: str  # verified by SMS code, E.164
    industry: str
    volume: str


class Lead(BaseModel):
    """A trial application, for sales."""

    id: str
    enterprise_id: str
    enterprise_name: str
    edition: str
    previous_edition: str
    contact_name: str
    contact_phone: str  # E.164, verified
    industry: str
    volume: str
    user_id: int
    applicant_phone: str | None = None  # the member who applied (their verified phone)
    submitted_at: datetime
    trial_ends_at: datetime


@dataclass(frozen=True)
class TrialOutcome:
    status: str  # "started" or "refused"
    reason: str | None = None  # not_verified, used, not_higher, unknown_edition, no_rights, incomplete, unknown
    enterprise: Enterprise | None = None
    lead: Lead | None = None


def contact_name(text: str) -> str:
    """A contact name as stored: NFKC, 2–30 characters with a letter, not a command, no direction,
    invisible or control characters (services.text_input); TextRefused says why not."""
    name = clean_line(text, min_len=NAME_MIN, max_len=NAME_MAX)
    if not any(ch.isalpha() for ch in name):
        raise TextRefused("no_letter")
    return name


def clean_name(text: str) -> str | None:
    """contact_name, or None when not acceptable."""
    try:
        return contact_name(text)
    except TextRefused:
        return None


def trial_editions(enterprise: Enterprise, catalog: Catalog, now: datetime) -> list[Edition]:
    """R14: the editions a trial may be of — sellable and above the bought edition in effect."""
    rank = catalog.rank(enterprise.paid_edition(now))
    return [e for e in catalog.sellable_editions if e.rank > rank]


def trial_refusal(enterprise: Enterprise, edition: str | None, catalog: Catalog, now: datetime) -> str | None:
    """Why this enterprise may not start a trial of `edition` (None: it may). `edition=None`
    asks only about the enterprise (verified, chance left, an edition above its own)."""
    if not enterprise.verified:
        return "not_verified"
    if enterprise.trial_used or enterprise.trial is not None:
        return "used"
    offered = trial_editions(enterprise, catalog, now)
    if not offered:
        return "not_higher"  # already on the highest edition
    if edition is None:
        return None
    target = catalog.edition(edition)
    if target is None or not target.sellable:
        return "unknown_edition"
    if target not in offered:
        return "not_higher"
    return None


class TrialService:
    def __init__(self, redis: Redis, clock: Clock, catalog: Catalog) -> None:
        self._redis = redis
        self._clock = clock
        self._catalog = catalog

    @property
    def length(self) -> timedelta:
        return timedelta(days=self._catalog.trial_days)

    async def start(self, form: TrialForm, *, user_id: int, applicant_phone: str | None) -> TrialOutcome:
        """Submit the application: the trial opens at once and the lead is stored, atomically.
        A second application for the same enterprise is refused ("used"), even at the same instant."""
        application = form.application()
        if application is None:
            return TrialOutcome("refused", "incomplete")
        now = self._clock.now()
        ent_key = keys.enterprise(application.enterprise_id)
        lead_id = "l" + secrets.token_hex(6)

        def decide(values: list[str | None]) -> Decision[TrialOutcome]:
            (raw,) = values
            if raw is None:
                return Decision(TrialOutcome("refused", "unknown"))
            enterprise = Enterprise.model_validate_json(raw)
            role = enterprise.role_of(applicant_phone)
            if role is None or not role.can_buy:
                return Decision(TrialOutcome("refused", "no_rights", enterprise))
            refusal = trial_refusal(enterprise, application.edition, self._catalog, now)
            if refusal is not None:
                return Decision(TrialOutcome("refused", refusal, enterprise))
            previous = enterprise.paid_edition(now)
            ends = now + self.length
            enterprise.trial = Trial(edition=application.edition, started_at=now, ends_at=ends,
                                     previous_edition=previous, lead_id=lead_id)
            enterprise.trial_used = True
            lead = Lead(
                id=lead_id, enterprise_id=enterprise.id, enterprise_name=enterprise.name,
                edition=application.edition, previous_edition=previous, contact_name=application.contact_name,
                contact_phone=application.contact_phone, industry=application.industry,
                volume=application.volume, user_id=user_id, applicant_phone=applicant_phone,
                submitted_at=now, trial_ends_at=ends,
            )

            def writes(pipe: Writes) -> None:
                pipe.set(ent_key, enterprise.model_dump_json())
                pipe.set(keys.trial_lead(lead_id), lead.model_dump_json())
                pipe.zadd(keys.trial_leads(), {lead_id: now.timestamp()})

            return Decision(TrialOutcome("started", None, enterprise, lead), writes)

        outcome = await transact(self._redis, [ent_key], decide)
        log.info("trial.%s enterprise=%s edition=%s reason=%s", outcome.status, form.enterprise_id,
                 form.edition, outcome.reason)
        return outcome

    async def lead(self, lead_id: str) -> Lead | None:
        raw = await self._redis.get(keys.trial_lead(lead_id))
        return Lead.model_validate_json(raw) if raw else None

    async def leads(self, limit: int = 100) -> list[Lead]:
        """The newest applications first."""
        ids = await self._redis.zrevrange(keys.trial_leads(), 0, limit - 1)
        if not ids:
            return []
        raws = await self._redis.mget([keys.trial_lead(text(i)) for i in ids])
        return [Lead.model_validate_json(r) for r in raws if r]

    async def end(self, enterprise_id: str, directory: EnterpriseDirectory) -> Enterprise | None:
        """Close the trial if its time is up (the scheduler calls this); None when nothing to close."""
        now = self._clock.now()
        closed: list[bool] = []

        def mutate(enterprise: Enterprise) -> None:
            closed.clear()
            trial = enterprise.trial
            if trial is not None and trial.ended_at is None and trial.ends_at <= now:
                trial.ended_at = now
                closed.append(True)

        try:
            enterprise = await directory.update(enterprise_id, mutate)
        except EnterpriseNotFound:
            return None
        return enterprise if closed else None
