"""The enterprise directory (docs/rules.md, Enterprises).

In production this is the vendor's account system; here it is a Redis-backed directory
behind the `EnterpriseDirectory` interface, managed with `python -m bot admin`.
"""
from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import datetime
from enum import Enum
from typing import Protocol

from pydantic import BaseModel, Field
from redis.asyncio import Redis

from services import keys
from services.clock import Clock
from services.redis_text import text
from services.text_input import TextRefused, clean_line
from services.transactions import Decision, Writes, transact


class Role(str, Enum):
    SUPER_ADMIN = "super_admin"
    BILLING_ADMIN = "billing_admin"
    MEMBER = "member"

    @property
    def can_buy(self) -> bool:
        return self in (Role.SUPER_ADMIN, Role.BILLING_ADMIN)


FREE_EDITION = "experience"  # 体验版: where every enterprise starts and returns to


class Trial(BaseModel):
    """申请试用 (R14, R15): the one trial of an enterprise, kept after it ends (one per enterprise,
    ever). While it runs, its edition is in effect; buying it (or a higher one) ends it; when it ends
    the enterprise is back on what it bought (or 体验版) — nothing else was changed."""

    edition: str
    started_at: datetime
    ends_at: datetime
    previous_edition: str  # the bought edition in effect when it started (for the record)
    lead_id: str  # the lead record for sales (services.trials)
    ended_at: datetime | None = None  # when the scheduler closed it

    def running(self, now: datetime) -> bool:
        return self.ended_at is None and self.started_at <= now < self.ends_at


class Enterprise(BaseModel):
    id: str
    name: str
    verified: bool = False
    security_phone: str | None = None  # E.164, usually the super admin's (R3)
    members: dict[str, Role] = Field(default_factory=dict)  # E.164 phone -> role
    edition: str = FREE_EDITION  # the bought edition (catalog code); see paid_edition()
    expires_at: datetime | None = None  # None while on the free Experience edition
    contracts_left: int = 0
    services: dict[str, int] = Field(default_factory=dict)  # value-added service -> units
    trial_used: bool = False
    delivered_orders: list[str] = Field(default_factory=list)  # order ids, delivery at most once
    subscriptions: dict[str, datetime] = Field(default_factory=dict)  # yearly service -> paid until
    trial: Trial | None = None

    def paid_edition(self, now: datetime) -> str:
        """The bought edition while its term runs; 体验版 otherwise (before the scheduler's write)."""
        if self.edition != FREE_EDITION and self.expires_at is not None and self.expires_at > now:
            return self.edition
        return FREE_EDITION

    def paid_expiry(self, now: datetime) -> datetime | None:
        return self.expires_at if self.paid_edition(now) != FREE_EDITION else None

    def running_trial(self, now: datetime) -> Trial | None:
        return self.trial if self.trial is not None and self.trial.running(now) else None

    def edition_in_effect(self, now: datetime) -> str:
        """What the enterprise uses now: the running trial's edition, else the bought one. A trial
        is always of a higher edition (R14); buying that edition or a higher one ends it
        (services.delivery), so a running trial is above what was bought."""
        trial = self.running_trial(now)
        return trial.edition if trial is not None else self.paid_edition(now)

    def active_subscriptions(self, now: datetime) -> dict[str, datetime]:
        return {code: until for code, until in self.subscriptions.items() if until > now}

    def role_of(self, phone: str | None) -> Role | None:
        return self.members.get(phone) if phone else None

    def buyers(self) -> list[str]:
        """Phones allowed to buy for the enterprise (super admin first, then billing admins)."""
        order = {Role.SUPER_ADMIN: 0, Role.BILLING_ADMIN: 1}
        return sorted((p for p, r in self.members.items() if r.can_buy), key=lambda p: (order[self.members[p]], p))


class EnterpriseNotFound(LookupError):
    """No enterprise has this id."""


class EnterpriseDirectory(Protocol):
    async def add(
        self, name: str, *, verified: bool = False, security_phone: str | None = None
    ) -> Enterprise: ...
    async def add_member(self, enterprise_id: str, phone: str, role: Role) -> Enterprise: ...
    async def get(self, enterprise_id: str) -> Enterprise | None: ...
    async def for_phone(self, phone: str) -> list[Enterprise]: ...
    async def all(self) -> list[Enterprise]: ...
    async def set_verified(self, enterprise_id: str, verified: bool = True) -> Enterprise: ...
    async def update(
        self, enterprise_id: str, mutate: Callable[[Enterprise], None]
    ) -> Enterprise: ...


Mutation = Callable[[Enterprise], None]

# Enough for a few dozen writers racing on one enterprise; each loss means another one won.
UPDATE_ATTEMPTS = 32


def _check_e164(phone: str) -> str:
    # The directory stores what callers normalized (services.phones); it only refuses the raw.
    if not (phone.startswith("+") and phone[1:].isdigit() and 8 <= len(phone) <= 16):
        raise ValueError(f"phone must be normalized E.164 (+8613800138000), got {phone!r}")
    return phone


# KEYS: a phone's set of enterprise ids. ARGV: the enterprise key prefix. The records, in no order
# (a phone joins a handful of enterprises; an id whose record is gone reads as nil).
_FOR_PHONE = """
local ids = redis.call('SMEMBERS', KEYS[1])
if #ids == 0 then return {} end
for i, id in ipairs(ids) do ids[i] = ARGV[1] .. id end
return redis.call('MGET', unpack(ids))
"""


class RedisEnterpriseDirectory:
    """Enterprises as JSON strings, plus a set of all ids and a per-phone set of ids."""

    def __init__(self, redis: Redis, clock: Clock) -> None:
        self._redis = redis
        self.clock = clock  # for callers of update() that stamp dates (expiry, trial)
        self._for_phone = redis.register_script(_FOR_PHONE)

    async def add(
        self, name: str, *, verified: bool = False, security_phone: str | None = None
    ) -> Enterprise:
        try:  # NFKC; no direction, invisible or control characters (services.text_input)
            name = clean_line(name, max_len=100, need_letter=True, allow_command=True)
        except TextRefused as refused:
            raise ValueError(f"enterprise name refused ({refused.reason})") from None
        if security_phone is not None:
            _check_e164(security_phone)
        while True:
            ent = Enterprise(
                id=f"ent_{secrets.token_hex(4)}",
                name=name,
                verified=verified,
                security_phone=security_phone,
            )
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.set(keys.enterprise(ent.id), ent.model_dump_json(), nx=True)
                pipe.sadd(keys.enterprises(), ent.id)
                created, _ = await pipe.execute()
            if created:  # NX refused only on an id collision: draw again
                return ent

    async def add_member(self, enterprise_id: str, phone: str, role: Role) -> Enterprise:
        _check_e164(phone)
        role = Role(role)

        def mutate(ent: Enterprise) -> None:
            ent.members[phone] = role
            if role is Role.SUPER_ADMIN and ent.security_phone is None:
                ent.security_phone = phone

        # The phone index is written in the same transaction as the record, so they never disagree.
        index = keys.phone_enterprises(phone)
        return await self._transact(
            enterprise_id, mutate, also=lambda pipe: pipe.sadd(index, enterprise_id)
        )

    async def get(self, enterprise_id: str) -> Enterprise | None:
        raw = await self._redis.get(keys.enterprise(enterprise_id))
        return None if raw is None else Enterprise.model_validate_json(raw)

    async def for_phone(self, phone: str) -> list[Enterprise]:
        # One round trip (the home screen and binding ask this on every visit): the phone's
        # enterprise ids and their records, read together by a script.
        raws = await self._for_phone(keys=[keys.phone_enterprises(phone)], args=[keys.enterprise("")])
        found = [Enterprise.model_validate_json(r) for r in raws if r]
        return sorted(found, key=lambda e: (e.name, e.id))

    async def all(self) -> list[Enterprise]:
        return await self._load_set(keys.enterprises())

    async def set_verified(self, enterprise_id: str, verified: bool = True) -> Enterprise:
        def mutate(ent: Enterprise) -> None:
            ent.verified = verified

        return await self._transact(enterprise_id, mutate)

    async def update(self, enterprise_id: str, mutate: Mutation) -> Enterprise:
        """Load, `mutate` in place, save, atomically (one optimistic transaction, services.transactions).

        `mutate` may run more than once when another writer wins the race, so it must only
        change the enterprise it is given. It may raise to abort; nothing is then written.
        Raises EnterpriseNotFound, or TransactionConflict after UPDATE_ATTEMPTS lost races.
        """
        return await self._transact(enterprise_id, mutate)

    # --- who to tell: the chats where a phone was verified (reminders, services.scheduler) ---

    async def remember_chat(self, phone: str, chat_id: int, lang: str) -> None:
        """Note that this phone was verified in this chat (the reminders go there)."""
        await self._redis.hset(keys.phone_chats(_check_e164(phone)), str(chat_id), lang)

    async def chats_of(self, phone: str) -> dict[int, str]:
        """chat id -> language of the chats where this phone was verified."""
        raw = await self._redis.hgetall(keys.phone_chats(phone))
        return {int(text(chat)): text(lang) for chat, lang in raw.items()}

    async def _transact(
        self,
        enterprise_id: str,
        mutate: Mutation,
        also: Callable[[Writes], object] | None = None,
    ) -> Enterprise:
        key = keys.enterprise(enterprise_id)

        def decide(values: list[str | None]) -> Decision[Enterprise]:
            if values[0] is None:
                raise EnterpriseNotFound(enterprise_id)
            ent = Enterprise.model_validate_json(values[0])
            mutate(ent)
            if ent.id != enterprise_id:
                raise ValueError("an update must not change the enterprise id")

            def writes(pipe: Writes) -> None:
                pipe.set(key, ent.model_dump_json())
                if also is not None:
                    also(pipe)

            return Decision(ent, writes)

        return await transact(self._redis, [key], decide, attempts=UPDATE_ATTEMPTS)

    async def _load_set(self, set_key: str) -> list[Enterprise]:
        ids = sorted(text(i) for i in await self._redis.smembers(set_key))
        if not ids:
            return []
        raws = await self._redis.mget([keys.enterprise(i) for i in ids])
        found = [Enterprise.model_validate_json(r) for r in raws if r is not None]
        return sorted(found, key=lambda e: (e.name, e.id))
