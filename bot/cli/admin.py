"""The operator's command line: `python -m bot admin ...` (or `python -m bot.cli.admin ...`).

Manages the enterprise directory in the Redis at $REDIS_URL. Exit codes: 0 done, 1 refused
(unknown id, bad phone or name), 2 bad usage or Redis not answering.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import sys
from urllib.parse import urlsplit, urlunsplit

from bot.runtime.redis_client import UNREACHABLE, describe_error, redis_from_url
from services.clock import SystemClock
from services.enterprises import (
    Enterprise,
    EnterpriseDirectory,
    EnterpriseNotFound,
    RedisEnterpriseDirectory,
    Role,
)
from services.phones import InvalidPhone, mask_phone, normalize_phone

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
DEMO_ENTERPRISE = "深圳示例科技有限公司"
DEMO_PHONE = "+8613800138000"


class Refused(Exception):
    """A command the operator must correct; printed on stderr, exit code 1."""


def normalize(raw: str) -> str:
    try:
        return normalize_phone(raw)
    except InvalidPhone as exc:
        raise Refused(f"not a phone number: {raw} ({exc.reason})") from exc


def masked(phone: str | None) -> str:
    return mask_phone(phone) if phone else "—"


def redact_url(url: str) -> str:
    # The URL may carry a password; never print it.
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


async def seed_demo(directory: EnterpriseDirectory) -> tuple[Enterprise, str]:
    """The demo verified enterprise with its super admin; reused when it already exists."""
    existing = [e for e in await directory.all() if e.name == DEMO_ENTERPRISE]
    ent = existing[0] if existing else await directory.add(DEMO_ENTERPRISE, verified=True)
    if not ent.verified:
        ent = await directory.set_verified(ent.id)
    if ent.members.get(DEMO_PHONE) is not Role.SUPER_ADMIN:
        ent = await directory.add_member(ent.id, DEMO_PHONE, Role.SUPER_ADMIN)
    return ent, DEMO_PHONE


def describe(ent: Enterprise) -> list[str]:
    services = ", ".join(f"{name} ×{units}" for name, units in sorted(ent.services.items()))
    lines = [
        f"Enterprise:     {ent.name}",
        f"id:             {ent.id}",
        f"verified:       {'yes' if ent.verified else 'no'}",
        f"security phone: {masked(ent.security_phone)}",
        f"edition:        {ent.edition}",
        f"expires:        {ent.expires_at.isoformat() if ent.expires_at else '—'}",
        f"contracts left: {ent.contracts_left}",
        f"services:       {services or '—'}",
        f"trial used:     {'yes' if ent.trial_used else 'no'}",
        f"members:        {len(ent.members) or '—'}",
    ]
    lines += [f"  {masked(phone)}  {role.value}" for phone, role in sorted(ent.members.items())]
    return lines


async def _require(directory: RedisEnterpriseDirectory, enterprise_id: str) -> Enterprise:
    ent = await directory.get(enterprise_id)
    if ent is None:
        raise Refused(f"no enterprise with id {enterprise_id}")
    return ent


async def run(args: argparse.Namespace, directory: RedisEnterpriseDirectory) -> list[str]:
    """Carry out one subcommand; returns the lines to print."""
    match args.command:
        case "add-enterprise":
            phone = normalize(args.security_phone) if args.security_phone else None
            try:
                ent = await directory.add(args.name, verified=args.verified, security_phone=phone)
            except ValueError as exc:
                raise Refused(str(exc)) from exc
            state = "verified" if ent.verified else "not verified"
            return [
                f"name: {ent.name}",
                f"verified: {'yes' if ent.verified else 'no'}",
                f"security phone: {masked(ent.security_phone)}",
                f"Created enterprise {ent.name} ({state}) id {ent.id}",
            ]
        case "add-member":
            phone = normalize(args.phone)
            try:
                ent = await directory.add_member(args.enterprise_id, phone, Role(args.role))
            except EnterpriseNotFound as exc:
                raise Refused(f"no enterprise with id {args.enterprise_id}") from exc
            return [f"Added {masked(phone)} as {args.role} to {ent.name} ({ent.id})"]
        case "show":
            return describe(await _require(directory, args.enterprise_id))
        case "list":
            ents = await directory.all()
            return [
                f"{e.id}  {'verified' if e.verified else 'unverified':10}  {e.edition:12}  {e.name}"
                for e in ents
            ] or ["No enterprises."]
        case "verify":
            try:
                ent = await directory.set_verified(args.enterprise_id)
            except EnterpriseNotFound as exc:
                raise Refused(f"no enterprise with id {args.enterprise_id}") from exc
            return [f"Verified {ent.name} ({ent.id})"]
        case "seed-demo":
            ent, phone = await seed_demo(directory)
            return [f"Demo enterprise {ent.name} (verified) super admin {phone} id {ent.id}"]
    raise AssertionError(args.command)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m bot admin",
        description="Manage the enterprise directory in Redis ($REDIS_URL).",
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add = sub.add_parser("add-enterprise", help="create an enterprise; prints its id last")
    add.add_argument("--name", required=True)
    add.add_argument("--verified", action="store_true")
    add.add_argument("--security-phone", metavar="PHONE")
    member = sub.add_parser("add-member", help="add (or change the role of) a member")
    member.add_argument("enterprise_id")
    member.add_argument("phone")
    member.add_argument("--role", required=True, choices=[r.value for r in Role])
    show = sub.add_parser("show", help="print one enterprise")
    show.add_argument("enterprise_id")
    sub.add_parser("list", help="one line per enterprise")
    verify = sub.add_parser("verify", help="mark an enterprise verified")
    verify.add_argument("enterprise_id")
    sub.add_parser("seed-demo", help=f"create the demo enterprise {DEMO_ENTERPRISE}")
    return p


async def _amain(args: argparse.Namespace, url: str) -> int:
    try:
        client = redis_from_url(url)
    except ValueError as exc:
        print(f"REDIS_URL is not a Redis URL: {redact_url(url)} ({exc})", file=sys.stderr)
        return 2
    try:
        await client.ping()
        lines = await run(args, RedisEnterpriseDirectory(client, SystemClock()))
    except UNREACHABLE as exc:
        print(f"Redis at {redact_url(url)} does not answer: {describe_error(exc)}", file=sys.stderr)
        return 2
    except Refused as exc:
        print(exc, file=sys.stderr)
        return 1
    finally:
        await client.aclose()
    print("\n".join(lines))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(sys.argv[1:] if argv is None else argv)
    return asyncio.run(_amain(args, os.environ.get("REDIS_URL", DEFAULT_REDIS_URL)))


if __name__ == "__main__":
    sys.exit(main())
