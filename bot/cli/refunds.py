"""`python -m bot refunds list`: the payments kept for a refund (R21), oldest first, one line
each — so that a refund case is seen even where no staff group is configured. Read-only.

Exit codes: 0 listed (none is fine), 2 bad usage or Redis not answering."""
from __future__ import annotations

import argparse
import asyncio
import os
import sys

from bot.cli.admin import DEFAULT_REDIS_URL, redact_url
from bot.runtime.redis_client import UNREACHABLE, describe_error, redis_from_url
from services.catalog import format_fen
from services.orders import refund_cases


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bot refunds",
                                description="Payments kept for a refund ($REDIS_URL).")
    p.add_argument("action", choices=["list"])
    return p


def line(record: dict[str, object]) -> str:
    amount = format_fen(int(str(record.get("amount_fen") or 0)))
    return (f"{record.get('id', '-')}  {record.get('at', '-')}  order {record.get('order_id')}  {amount} "
            f"{record.get('currency', '')}  via {record.get('provider') or '-'}  charge {record.get('charge_id')}  "
            f"reason {record.get('reason')}")


async def _amain(url: str) -> int:
    try:
        client = redis_from_url(url)
    except ValueError as exc:
        print(f"REDIS_URL is not a Redis URL: {redact_url(url)} ({exc})", file=sys.stderr)
        return 2
    try:
        records = await refund_cases(client)
    except UNREACHABLE as exc:
        print(f"Redis at {redact_url(url)} does not answer: {describe_error(exc)}", file=sys.stderr)
        return 2
    finally:
        await client.aclose()
    for record in records:
        print(line(record))
    print(f"{len(records)} payment(s) kept for a refund")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser().parse_args(sys.argv[1:] if argv is None else argv)
    return asyncio.run(_amain(os.environ.get("REDIS_URL", DEFAULT_REDIS_URL)))
