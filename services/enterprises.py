"""The enterprise directory (DOMAIN.md, Enterprises).

In production this is the vendor's account system; here it is a Redis-backed directory
behind the `EnterpriseDirectory` interface, managed with `python -m bot admin`.
"""
from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import datetime
from enum import Enum
from typing import Any, Protocol

from pydantic import BaseModel, Field
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from services import keys
from services.clock import Clock
from services.transactions import Decision, transact


class Role(str, Enum):
    SUPER_ADMIN = "super_admin"
    BILLING_ADMIN = "billing_admin"
    MEMBER = "member"

    @property
    def can_buy(self) -> bool:
        return self in (Role.SUPER_ADMIN, Role.BILLING_ADMIN)


class Enterprise(BaseModel):
    id: str
    name: str
    verified: bool = False
    security_phone: str | None = None  # E.164, usually the super admin's (R3)
    members: dict[str, Role] = Field(default_factory=dict)  # E.164 phone -> role
    edition: str = "experience"  # edition code in effect (catalog)
    expires_at: datetime | None = None  # None while on the free Experience edition
    contracts_left: int = 0
    services: dict[str, int] = Field(default_factory=dict)  # value-added service -> units
    trial_used: bool = False
    delivered_orders: list[str] = Field(default_factory=list)  # order ids, delivery at most once


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


def _text(value: str | bytes) -> str:
    # Works whether or not the client was made with decode_responses=True.
    return value.decode() if isinstance(value, bytes) else value


class RedisEnterpriseDirectory:
    """Enterprises as JSON strings, plus a set of all ids and a per-phone set of ids."""

    def __init__(self, redis: Redis, clock: Clock) -> None:
        self._redis = redis
        self.clock = clock  # for callers of update() that stamp dates (expiry, trial)

    async def add(
        self, name: str, *, verified: bool = False, security_phone: str | None = None
    ) -> Enterprise:
        name = name.strip()
        if not name:
            raise ValueError("enterprise name is empty")
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

        # The phone index is written in the same MULTI as the record, so they never disagree.
        index = keys.phone_enterprises(phone)
        return await self._transact(
            enterprise_id, mutate, also=lambda pipe: pipe.sadd(index, enterprise_id)
        )

    async def get(self, enterprise_id: str) -> Enterprise | None:
        raw = await self._redis.get(keys.enterprise(enterprise_id))
        return None if raw is None else Enterprise.model_validate_json(raw)

    async def for_phone(self, phone: str) -> list[Enterprise]:
        return await self._load_set(keys.phone_enterprises(phone))

    async def all(self) -> list[Enterprise]:
        return await self._load_set(keys.enterprises())

    async def set_verified(self, enterprise_id: str, verified: bool = True) -> Enterprise:
        def mutate(ent: Enterprise) -> None:
            ent.verified = verified

        return await self._transact(enterprise_id, mutate)

    async def update(self, enterprise_id: str, mutate: Mutation) -> Enterprise:
        """Load, `mutate` in place, save, atomically (WATCH/MULTI/EXEC via services.transactions).

        `mutate` may run more than once when another writer wins the race, so it must only
        change the enterprise it is given. It may raise to abort; nothing is then written.
        Raises EnterpriseNotFound, or TransactionConflict after UPDATE_ATTEMPTS lost races.
        """
        return await self._transact(enterprise_id, mutate)

    async def _transact(
        self,
        enterprise_id: str,
        mutate: Mutation,
        also: Callable[[Pipeline], Any] | None = None,
    ) -> Enterprise:
        key = keys.enterprise(enterprise_id)

        def decide(values: list[str | None]) -> Decision[Enterprise]:
            if values[0] is None:
                raise EnterpriseNotFound(enterprise_id)
            ent = Enterprise.model_validate_json(values[0])
            mutate(ent)
            if ent.id != enterprise_id:
                raise ValueError("an update must not change the enterprise id")

            def writes(pipe: Pipeline) -> None:
                pipe.set(key, ent.model_dump_json())
                if also is not None:
                    also(pipe)

            return Decision(ent, writes)

        return await transact(self._redis, [key], decide, attempts=UPDATE_ATTEMPTS)

    async def _load_set(self, set_key: str) -> list[Enterprise]:
        ids = sorted(_text(i) for i in await self._redis.smembers(set_key))
        if not ids:
            return []
        raws = await self._redis.mget([keys.enterprise(i) for i in ids])
        found = [Enterprise.model_validate_json(r) for r in raws if r is not None]
        return sorted(found, key=lambda e: (e.name, e.id))
