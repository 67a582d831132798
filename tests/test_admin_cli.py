"""`python -m bot.cli.admin` as the operator runs it: a real subprocess on the tests' Redis db."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from bot.cli.admin import DEMO_ENTERPRISE, DEMO_PHONE, seed_demo
from services.clock import FixedClock
from services.enterprises import RedisEnterpriseDirectory, Role
from tests.conftest import TEST_REDIS_URL

ROOT = Path(__file__).resolve().parent.parent


def admin(*args: str, url: str = TEST_REDIS_URL) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "REDIS_URL": url}
    return subprocess.run(
        [sys.executable, "-m", "bot.cli.admin", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=30,
    )


async def test_add_enterprise_prints_the_id_last_and_show_displays_it(redis):
    created = admin("add-enterprise", "--name", "某某科技有限公司", "--verified")
    assert created.returncode == 0, created.stderr
    ent_id = created.stdout.split()[-1]
    assert ent_id.startswith("ent_")

    added = admin("add-member", ent_id, "138 0013 8000", "--role", "super_admin")
    assert added.returncode == 0, added.stderr
    assert "8000" in added.stdout and "13800138000" not in added.stdout

    shown = admin("show", ent_id)
    assert shown.returncode == 0, shown.stderr
    assert ent_id in shown.stdout and "某某科技有限公司" in shown.stdout
    assert "super_admin" in shown.stdout and "13800138000" not in shown.stdout

    stored = await RedisEnterpriseDirectory(redis, FixedClock()).get(ent_id)
    assert stored.verified and stored.members == {"+8613800138000": Role.SUPER_ADMIN}
    assert stored.security_phone == "+8613800138000"


async def test_list_and_verify(redis):
    ent_id = admin("add-enterprise", "--name", "Acme").stdout.split()[-1]
    assert "unverified" in admin("list").stdout

    assert admin("verify", ent_id).returncode == 0
    listed = admin("list")
    [line] = listed.stdout.splitlines()
    assert ent_id in line and "Acme" in line and "unverified" not in line


async def test_unknown_id_exits_1_with_a_message(redis):
    for args in (["show", "ent_00000000"], ["verify", "ent_00000000"],
                 ["add-member", "ent_00000000", "13800138000", "--role", "member"]):
        result = admin(*args)
        assert result.returncode == 1
        assert "ent_00000000" in result.stderr and "Traceback" not in result.stderr
    assert await redis.dbsize() == 0


async def test_bad_phone_exits_1(redis):
    ent_id = admin("add-enterprise", "--name", "Acme").stdout.split()[-1]
    result = admin("add-member", ent_id, "12345", "--role", "member")
    assert result.returncode == 1 and "Traceback" not in result.stderr


async def test_redis_not_answering_exits_2_with_one_line(redis):
    result = admin("list", url="redis://127.0.0.1:1/0")
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("Redis at redis://127.0.0.1:1/0 does not answer: ")


async def test_seed_demo_is_idempotent(redis):
    directory = RedisEnterpriseDirectory(redis, FixedClock())
    first, phone = await seed_demo(directory)
    again, _ = await seed_demo(directory)

    assert phone == DEMO_PHONE and first.id == again.id
    assert again.name == DEMO_ENTERPRISE and again.verified
    assert again.members == {DEMO_PHONE: Role.SUPER_ADMIN} and again.security_phone == DEMO_PHONE
    assert [e.id for e in await directory.for_phone(DEMO_PHONE)] == [first.id]

    cli = admin("seed-demo")
    assert cli.returncode == 0 and cli.stdout.split()[-1] == first.id
