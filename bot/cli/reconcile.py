"""`python -m bot reconcile [--hours N]`: list the web orders, and the refunds, whose state
differs between the payment providers (WEB_GATEWAY, asked through their query APIs) and Redis
($REDIS_URL), both ways: paid at the provider but not here, paid here but not there, another
amount; refunded here but not there, and the other way. Read-only. `--hours N` looks at what
was created in the last N hours (default: everything).

One line per mismatch, then a summary. Exit codes: 0 consistent, 1 mismatches found,
2 bad usage, bad settings or Redis not answering (docs/reliability.md, docs/payments.md).
"""
from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Callable
from datetime import timedelta

import redis.asyncio as aioredis
from pydantic import ValidationError

from bot.cli.admin import DEFAULT_REDIS_URL, redact_url
from bot.runtime.redis_client import UNREACHABLE, describe_error, redis_from_url
from services.clock import SystemClock
from services.payment_gateway import PaymentGateway
from services.payment_refunds import ProviderError, RefundingGateway
from services.reconcile import Reconciler, Report
from services.refunds import RefundService


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m bot reconcile",
        description="List web orders and refunds whose state differs between the payment providers (WEB_GATEWAY) "
                    "and Redis ($REDIS_URL). Exit 0: consistent; 1: mismatches; 2: Redis does not answer.",
    )
    p.add_argument("--hours", type=float, default=None, help="only what was created in the last N hours")
    return p


def gateway_for(client: aioredis.Redis) -> list[PaymentGateway]:
    """The gateways the web app uses, from the same settings (a provider's adapter works alike)."""
    from bot.app import build_gateways
    from config.settings import Settings

    return build_gateways(Settings(), client, SystemClock())


def render(report: Report) -> list[str]:
    return [m.line() for m in report.mismatches] + [report.summary()]


async def _amain(url: str, make_gateway: Callable[[aioredis.Redis], PaymentGateway | list[PaymentGateway]] = gateway_for,
                 *, hours: float | None = None) -> int:
    try:
        client = redis_from_url(url)
    except ValueError as exc:
        print(f"REDIS_URL is not a Redis URL: {redact_url(url)} ({exc})", file=sys.stderr)
        return 2
    gateways: list[PaymentGateway] = []
    try:
        await client.ping()
        made = make_gateway(client)
        gateways = made if isinstance(made, list) else [made]
        clock = SystemClock()
        refunds = RefundService(client, clock, {g.name: g for g in gateways if isinstance(g, RefundingGateway)})
        since = clock.now() - timedelta(hours=hours) if hours is not None else None
        report = await Reconciler(client, gateways, refunds=refunds, since=since).run()
    except UNREACHABLE as exc:
        print(f"Redis at {redact_url(url)} does not answer: {describe_error(exc)}", file=sys.stderr)
        return 2
    except (ValidationError, ValueError) as exc:
        print(f"bad settings: {exc}", file=sys.stderr)
        return 2
    except ProviderError as error:
        print(f"a payment provider could not be asked: {error}", file=sys.stderr)
        return 2
    finally:
        for gateway in gateways:
            await gateway.close()
        await client.aclose()
    print("\n".join(render(report)))
    return 0 if report.consistent else 1


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(sys.argv[1:] if argv is None else argv)
    return asyncio.run(_amain(os.environ.get("REDIS_URL", DEFAULT_REDIS_URL), hours=args.hours))


if __name__ == "__main__":
    sys.exit(main())
