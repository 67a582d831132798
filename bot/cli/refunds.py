"""`python -m bot refunds list|refund ID|done ID`: the payments kept for a refund (R21), paying
one back through the rail that took it, and recording one a person paid back outside the bot —
so that a refund case is seen, and made, even where no staff group is configured.

    list [--open]             every case (or the open ones), oldest first, one line each
    refund ID [--amount Y]    refund the case (all of it, or Y yuan / Y stars of it) once,
                              through its rail; the buyer is told in chat when BOT_TOKEN is set
    done ID --note TEXT       the case was paid back by hand (the provider's dashboard, a
                              transfer): recorded once, with the note; the buyer is told

Exit codes: 0 listed, refunded (or under way, or done before), or recorded; 1 the rail refused
it, cannot be reached, no rail can refund it (manual), or a rail is refunding it right now; 2
bad usage, an unknown case, bad settings or Redis not answering."""
from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Awaitable, Callable
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING

from pydantic import ValidationError

from bot.cli.admin import DEFAULT_REDIS_URL, redact_url
from bot.runtime.redis_client import UNREACHABLE, describe_error, redis_from_url
from services import keys
from services.catalog import format_amount
from services.orders import STARS, refund_cases

if TYPE_CHECKING:
    from aiogram import Bot

    from bot.context import AppContext

SUCCESS = ("refunded", "refunding", "already", "marked")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bot refunds",
                                description="Payments kept for a refund ($REDIS_URL), and refunding them.")
    sub = p.add_subparsers(dest="action", required=True)
    listing = sub.add_parser("list", help="the refund cases, oldest first")
    listing.add_argument("--open", action="store_true", help="only those not refunded yet")
    refund = sub.add_parser("refund", help="refund a case through the rail that took the money")
    refund.add_argument("case_id", metavar="ID", help="the case id, rf_...")
    refund.add_argument("--amount", help="a part only: yuan (e.g. 100.00), or whole stars for Telegram Stars")
    done = sub.add_parser("done", help="record a case paid back outside the bot (by hand)")
    done.add_argument("case_id", metavar="ID", help="the case id, rf_...")
    done.add_argument("--note", required=True, help="how it was paid back: where, a reference")
    return p


def line(record: dict[str, object], status: str = "pending") -> str:
    amount = format_amount(int(str(record.get("amount_fen") or 0)), str(record.get("currency", "")))
    return (f"{record.get('id', '-')}  {record.get('at', '-')}  order {record.get('order_id')}  {amount} "
            f"{record.get('currency', '')}  via {record.get('provider') or '-'}  charge {record.get('charge_id')}  "
            f"reason {record.get('reason')}  {status}")


def amount_in_units(text: str | None, currency: str) -> int | None:
    """--amount as the case's unit: fen from yuan, or whole stars."""
    if text is None:
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"--amount {text!r} is not a number") from None
    units = value if currency == STARS else value * 100
    if units != units.to_integral_value() or units <= 0:
        raise ValueError(f"--amount {text!r}: a positive amount in whole {'stars' if currency == STARS else 'fen'}")
    return int(units)


async def _list(url: str, only_open: bool) -> int:
    from services.refunds import RefundState

    client = redis_from_url(url)
    try:
        records = await refund_cases(client)
        states = [await client.get(keys.refund_state(str(r["id"]))) for r in records]
    finally:
        await client.aclose()
    shown = 0
    for record, raw in zip(records, states, strict=True):
        status = RefundState.model_validate_json(raw).status if raw else "pending"
        if only_open and status == "refunded":
            continue
        print(line(record, status))
        shown += 1
    print(f"{shown} payment(s) kept for a refund")
    return 0


async def _done(url: str, case_id: str, note: str) -> int:
    from bot.refunds import mark_done, outcome_text

    async def act(app: AppContext, bot: Bot | None) -> int:
        if not note.strip():
            raise ValueError("--note must say how the case was paid back")
        outcome = await mark_done(bot, app, case_id, by="cli", note=note)
        if outcome.status == "unknown":
            print(f"no refund case {case_id}", file=sys.stderr)
            return 2
        print(outcome_text(app.texts.for_lang("en"), app, outcome, case_id))
        if outcome.status == "marked" and bot is None:
            print("the buyer was not told: BOT_TOKEN is not set")
        return 0 if outcome.status in SUCCESS else 1

    return await _with_app(url, act)


async def _refund(url: str, case_id: str, amount_text: str | None) -> int:
    from bot.refunds import BotStarRefunds, outcome_text, refund_case

    async def act(app: AppContext, bot: Bot | None) -> int:
        case = await app.refunds.case(case_id)
        if case is None:
            print(f"no refund case {case_id}", file=sys.stderr)
            return 2
        amount = amount_in_units(amount_text, case.currency)
        if bot is not None:
            app.refunds.stars = BotStarRefunds(bot)
            outcome = await refund_case(bot, app, case_id, by="cli", amount_fen=amount)
        else:
            outcome = await app.refunds.refund(case_id, by="cli", amount_fen=amount)
        print(outcome_text(app.texts.for_lang("en"), app, outcome, case_id))
        if outcome.status == "refunded" and bot is None:
            print("the buyer was not told: BOT_TOKEN is not set")
        return 0 if outcome.status in SUCCESS else 1

    return await _with_app(url, act)


async def _with_app(url: str, act: Callable[[AppContext, Bot | None], Awaitable[int]]) -> int:
    """The services as `python -m bot run` builds them, and the bot when BOT_TOKEN is set (to
    tell the buyer), for one action."""
    from aiogram import Bot
    from aiogram.client.session.aiohttp import AiohttpSession
    from aiogram.client.telegram import TelegramAPIServer

    from bot.app import build_context
    from config.settings import Settings

    settings = Settings()
    client = redis_from_url(url)
    token = settings.bot_token.get_secret_value().strip() if settings.bot_token else ""
    bot = Bot(token, session=AiohttpSession(api=TelegramAPIServer.from_base(settings.telegram_api_base))) \
        if token else None
    app = build_context(settings, client)
    try:
        return await act(app, bot)
    finally:
        for gateway in app.gateways:
            await gateway.close()
        if bot is not None:
            await bot.session.close()
        await client.aclose()


async def _amain(url: str, args: argparse.Namespace) -> int:
    try:
        if args.action == "list":
            return await _list(url, args.open)
        if args.action == "done":
            return await _done(url, args.case_id, args.note)
        return await _refund(url, args.case_id, args.amount)
    except UNREACHABLE as exc:
        print(f"Redis at {redact_url(url)} does not answer: {describe_error(exc)}", file=sys.stderr)
        return 2
    except ValidationError as exc:
        print(f"bad settings: {' '.join(str(exc.errors()[0]['msg']).split())}", file=sys.stderr)
        return 2
    except ValueError as exc:
        print(str(exc), file=sys.stderr)
        return 2


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(sys.argv[1:] if argv is None else argv)
    url = os.environ.get("REDIS_URL", DEFAULT_REDIS_URL)
    try:
        redis_from_url(url)
    except ValueError as exc:
        print(f"REDIS_URL is not a Redis URL: {redact_url(url)} ({exc})", file=sys.stderr)
        return 2
    return asyncio.run(_amain(url, args))
