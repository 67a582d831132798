"""`python -m bot reconcile`: list the web orders whose state differs between the payment
gateway (WEB_GATEWAY, asked through its `query` API) and Redis ($REDIS_URL). Read-only.

One line per mismatch, then a summary. Exit codes: 0 consistent, 1 mismatches found,
2 bad usage, bad settings or Redis not answering (issue 6, guarantee 5; docs/reliability.md).
"""
from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Callable

import redis.asyncio as aioredis
from pydantic import ValidationError

from bot.cli.admin import DEFAULT_REDIS_URL, redact_url
from bot.runtime.redis_client import UNREACHABLE, describe_error, redis_from_url
from services.clock import SystemClock
from services.payment_gateway import PaymentGateway
from services.reconcile import Reconciler, Report


def parser() -> argparse.ArgumentParser:
    return argparse.ArgumentParser(
        prog="python -m bot reconcile",
        description="List web orders whose state differs between the payment gateway (WEB_GATEWAY) "
                    "and Redis ($REDIS_URL). Exit 0: consistent; 1: mismatches; 2: Redis does not answer.",
    )


def gateway_for(client: aioredis.Redis) -> PaymentGateway:
    """The gateway the web app uses, from the same settings (a provider's adapter works alike)."""
    from bot.app import build_gateway
    from config.settings import Settings

    return build_gateway(Settings(), client, SystemClock())


def render(report: Report) -> list[str]:
    return [m.line() for m in report.mismatches] + [report.summary()]


async def _amain(url: str, make_gateway: Callable[[aioredis.Redis], PaymentGateway] = gateway_for) -> int:
    try:
        client = redis_from_url(url)
    except ValueError as exc:
        print(f"REDIS_URL is not a Redis URL: {redact_url(url)} ({exc})", file=sys.stderr)
        return 2
    gateway: PaymentGateway | None = None
    try:
        await client.ping()
        gateway = make_gateway(client)
        report = await Reconciler(client, gateway).run()
    except UNREACHABLE as exc:
        print(f"Redis at {redact_url(url)} does not answer: {describe_error(exc)}", file=sys.stderr)
        return 2
    except (ValidationError, ValueError) as exc:
        print(f"bad settings: {exc}", file=sys.stderr)
        return 2
    finally:
        if gateway is not None:
            await gateway.close()
        await client.aclose()
    print("\n".join(render(report)))
    return 0 if report.consistent else 1


def main(argv: list[str] | None = None) -> int:
    parser().parse_args(sys.argv[1:] if argv is None else argv)
    return asyncio.run(_amain(os.environ.get("REDIS_URL", DEFAULT_REDIS_URL)))


if __name__ == "__main__":
    sys.exit(main())
