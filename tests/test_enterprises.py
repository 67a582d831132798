"""The Redis enterprise directory, on a real Redis."""
from __future__ import annotations

import asyncio
import json

import pytest

from services import keys
from services.enterprises import Enterprise, EnterpriseNotFound, RedisEnterpriseDirectory, Role

ADMIN = "+8613800138000"
MEMBER = "+8613900139000"


@pytest.fixture
def directory(redis, clock) -> RedisEnterpriseDirectory:
    return RedisEnterpriseDirectory(redis, clock)


async def test_add_stores_json_and_indexes_the_id(directory, redis):
    ent = await directory.add("  某某科技有限公司 ", verified=True)

    assert ent.id.startswith("ent_") and len(ent.id) == 12 and ent.id[4:].isalnum()
    assert ent.name == "某某科技有限公司" and ent.verified and ent.security_phone is None
    assert json.loads(await redis.get(keys.enterprise(ent.id)))["name"] == "某某科技有限公司"
    assert await redis.smembers(keys.enterprises()) == {ent.id}
    assert await directory.get(ent.id) == ent


async def test_add_refuses_an_empty_name_and_a_raw_phone(directory, redis):
    with pytest.raises(ValueError):
        await directory.add("   ")
    with pytest.raises(ValueError):
        await directory.add("Acme", security_phone="13800138000")
    assert await redis.dbsize() == 0


async def test_ids_are_distinct(directory):
    ents = [await directory.add(f"E{i}") for i in range(20)]
    assert len({e.id for e in ents}) == 20


async def test_first_super_admin_becomes_the_security_phone(directory):
    ent = await directory.add("Acme")
    ent = await directory.add_member(ent.id, MEMBER, Role.MEMBER)
    assert ent.security_phone is None

    ent = await directory.add_member(ent.id, ADMIN, Role.SUPER_ADMIN)
    ent = await directory.add_member(ent.id, "+8613700137000", Role.SUPER_ADMIN)

    assert ent.security_phone == ADMIN
    assert ent.members == {
        MEMBER: Role.MEMBER, ADMIN: Role.SUPER_ADMIN, "+8613700137000": Role.SUPER_ADMIN
    }
    assert await directory.get(ent.id) == ent


async def test_a_set_security_phone_is_kept(directory):
    ent = await directory.add("Acme", security_phone=MEMBER)
    ent = await directory.add_member(ent.id, ADMIN, Role.SUPER_ADMIN)
    assert ent.security_phone == MEMBER


async def test_adding_again_changes_the_role(directory):
    ent = await directory.add("Acme")
    await directory.add_member(ent.id, MEMBER, Role.MEMBER)
    ent = await directory.add_member(ent.id, MEMBER, Role.BILLING_ADMIN)
    assert ent.members == {MEMBER: Role.BILLING_ADMIN}
    assert ent.members[MEMBER].can_buy


async def test_add_member_refuses_a_raw_phone(directory):
    ent = await directory.add("Acme")
    with pytest.raises(ValueError):
        await directory.add_member(ent.id, "138 0013 8000", Role.MEMBER)
    assert (await directory.get(ent.id)).members == {}


async def test_for_phone_uses_the_index_and_sorts_by_name(directory, redis):
    b = await directory.add("乙公司")
    a = await directory.add("Acme")
    c = await directory.add("Zeta")
    other = await directory.add("Other")
    for ent in (b, a, c):
        await directory.add_member(ent.id, ADMIN, Role.MEMBER)
    await directory.add_member(other.id, MEMBER, Role.MEMBER)

    assert await redis.smembers(keys.phone_enterprises(ADMIN)) == {a.id, b.id, c.id}
    assert [e.name for e in await directory.for_phone(ADMIN)] == ["Acme", "Zeta", "乙公司"]
    assert [e.id for e in await directory.for_phone(MEMBER)] == [other.id]
    assert await directory.for_phone("+8610000000000") == []


async def test_all_sorts_by_name(directory):
    for name in ("Zeta", "Acme", "Mid"):
        await directory.add(name)
    assert [e.name for e in await directory.all()] == ["Acme", "Mid", "Zeta"]


async def test_set_verified(directory):
    ent = await directory.add("Acme")
    assert (await directory.set_verified(ent.id)).verified
    assert (await directory.get(ent.id)).verified
    assert not (await directory.set_verified(ent.id, False)).verified


async def test_unknown_id(directory, redis):
    assert await directory.get("ent_00000000") is None
    with pytest.raises(EnterpriseNotFound):
        await directory.add_member("ent_00000000", ADMIN, Role.SUPER_ADMIN)
    with pytest.raises(EnterpriseNotFound):
        await directory.set_verified("ent_00000000")
    with pytest.raises(LookupError):
        await directory.update("ent_00000000", lambda e: None)
    # A refused member must not leave a dangling phone index entry.
    assert await redis.dbsize() == 0


async def test_concurrent_updates_all_land(directory):
    ent = await directory.add("Acme")

    def add_ten(e: Enterprise) -> None:
        e.contracts_left += 10

    await asyncio.gather(*(directory.update(ent.id, add_ten) for _ in range(20)))

    assert (await directory.get(ent.id)).contracts_left == 200


async def test_update_aborts_without_writing_when_mutate_raises(directory):
    ent = await directory.add("Acme")

    def refuse(e: Enterprise) -> None:
        e.contracts_left = 99
        raise RuntimeError("no")

    with pytest.raises(RuntimeError):
        await directory.update(ent.id, refuse)
    assert (await directory.get(ent.id)).contracts_left == 0


async def test_update_may_not_change_the_id(directory):
    ent = await directory.add("Acme")
    with pytest.raises(ValueError):
        await directory.update(ent.id, lambda e: setattr(e, "id", "ent_other000"))
    assert await directory.get("ent_other000") is None
