"""Refund cases (R21) made to happen: each goes back through the rail that took the money.

A refund case is a payment kept for a refund (services.orders: `refund_record`, listed in
`{esign}:refunds`). Where it stands is kept beside it (`{esign}:refund-state:<id>`):

    pending ──claim──▶ refunding ──▶ refunded        the money is back with the buyer
                           │    └───▶ refused         the provider will not (a person looks)
                           └────────▶ manual          no rail can do it (see below); a person does
    refunding ──provider unreachable──▶ pending       asked again later: the same refund id
    pending, refused, manual ──done by hand──▶ refunded  a person paid it back outside the bot

The case id (`rf_<hex>`) is the refund's id at the provider (WeChat Pay's out_refund_no,
Alipay's out_request_no), so asking twice never pays twice. Besides, a case is claimed in one
Redis transaction before the provider is asked: two agents pressing 🔁 退款 at once, or an
agent and the command line, make one provider call. A claim left by a process that died while
asking is taken over after CLAIM_SECONDS (the provider's idempotency makes that safe).

Rails, by the case's `provider`: a web gateway's name (sandbox, wechat, alipay) is that
gateway's `refund`; "telegram" with currency XTR is Telegram Stars' refundStarPayment (the
`StarRefunds` given by the bot); "telegram" in CNY was taken by a Telegram Payments provider,
which the Bot API cannot refund: the case becomes `manual` and stays listed.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol

from pydantic import BaseModel
from redis.asyncio import Redis

from services import keys
from services.clock import Clock
from services.orders import STARS, refund_cases
from services.payment_refunds import (
    ProviderError,
    RefundingGateway,
    RefundNotice,
    RefundRefused,
    RefundResult,
)
from services.transactions import Decision, transact

log = logging.getLogger(__name__)

RefundStatus = Literal["pending", "refunding", "refunded", "refused", "manual"]
OPEN: tuple[RefundStatus, ...] = ("pending", "refunding", "refused", "manual")
# closed and abnormal: the provider gave up on it (another account, by hand): a person's turn.
RESULT_STATUS: dict[str, RefundStatus] = {"succeeded": "refunded", "processing": "refunding",
                                          "closed": "manual", "abnormal": "manual"}
BY_HAND = "by_hand"  # provider_status of a case a person paid back outside the bot
NOTE_MAX = 500
CLAIM_SECONDS = 600
TOLD_SECONDS = 90 * 86400
REASON_TEXT = "订单 {order_id} 退款"


class StarRefundRefused(Exception):
    """Telegram refused refundStarPayment (an unknown charge, another user's)."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


class StarRefunds(Protocol):
    async def refund_star_payment(self, user_id: int, charge_id: str) -> None:
        """refundStarPayment; returns once refunded (already refunded counts), raises
        StarRefundRefused when Telegram will not, ProviderError when it cannot be asked."""
        ...


class RefundState(BaseModel):
    status: RefundStatus = "pending"
    updated_at: datetime | None = None
    by: str | None = None  # who asked last: "agent:<id>", "cli"
    claimed_at: datetime | None = None
    attempts: int = 0
    refunded_fen: int | None = None  # what the rail paid back (whole stars for XTR)
    provider_refund_id: str | None = None
    provider_status: str | None = None  # the rail's own word (processing, succeeded, ...)
    problem: str | None = None  # why it is pending again, refused or manual
    refunded_at: datetime | None = None
    note: str | None = None  # done by hand: what the person wrote (how, where, a reference)


class RefundCase(BaseModel):
    id: str
    order_id: str
    amount_fen: int  # the payment kept (whole stars for XTR)
    currency: str
    provider: str
    charge_id: str
    reason: str
    at: str
    payer_id: int | None = None
    state: RefundState = RefundState()

    @property
    def open(self) -> bool:
        return self.state.status in OPEN

    @classmethod
    def of(cls, record: Mapping[str, Any], state: RefundState | None) -> RefundCase:
        return cls(id=str(record["id"]), order_id=str(record.get("order_id", "")),
                   amount_fen=int(record.get("amount_fen") or 0), currency=str(record.get("currency", "")),
                   provider=str(record.get("provider") or ""), charge_id=str(record.get("charge_id", "")),
                   reason=str(record.get("reason", "")), at=str(record.get("at", "")),
                   payer_id=record.get("payer_id"), state=state or RefundState())


class RefundOutcome(BaseModel):
    """What asking for a refund did. `called`: the rail was asked this time."""

    status: Literal["refunded", "refunding", "refused", "manual", "already", "retry", "unknown", "no_rail",
                    "marked", "busy"]
    case: RefundCase | None = None
    called: bool = False
    problem: str | None = None


class RefundService:
    def __init__(self, redis: Redis, clock: Clock, gateways: Mapping[str, RefundingGateway],
                 stars: StarRefunds | None = None) -> None:
        self._redis = redis
        self._clock = clock
        self._gateways = dict(gateways)
        self.stars = stars  # the bot sets it: refundStarPayment needs the Bot

    # --- reading --------------------------------------------------------------------------------

    async def cases(self) -> list[RefundCase]:
        """Every refund case, oldest first, with where it stands."""
        records = await refund_cases(self._redis)
        unique = list({str(r["id"]): r for r in records}.values())
        states = await self._redis.mget([keys.refund_state(str(r["id"])) for r in unique]) if unique else []
        return [RefundCase.of(r, RefundState.model_validate_json(s) if s else None)
                for r, s in zip(unique, states, strict=True)]

    async def open_cases(self) -> list[RefundCase]:
        return [case for case in await self.cases() if case.open]

    async def case(self, case_id: str) -> RefundCase | None:
        record = next((r for r in await refund_cases(self._redis) if r.get("id") == case_id), None)
        if record is None:
            return None
        raw = await self._redis.get(keys.refund_state(case_id))
        return RefundCase.of(record, RefundState.model_validate_json(raw) if raw else None)

    # --- refunding --------------------------------------------------------------------------------

    async def refund(self, case_id: str, *, by: str, amount_fen: int | None = None) -> RefundOutcome:
        """Pay the case back through its rail, once. `amount_fen` below the payment is a partial
        refund (the rest stays with us); the default is all of it."""
        case = await self.case(case_id)
        if case is None:
            return RefundOutcome(status="unknown")
        amount = case.amount_fen if amount_fen is None else amount_fen
        if not 0 < amount <= case.amount_fen:
            return RefundOutcome(status="refused", case=case, problem="amount")
        rail = self._rail(case)
        if rail is None:
            return RefundOutcome(status="no_rail", case=case, problem=f"no rail for {case.provider or '?'}")
        if rail == "manual":
            case = await self._record(case.id, lambda st: _manual(st, "telegram_provider_payment"))
            return RefundOutcome(status="manual", case=case, problem="telegram_provider_payment")
        claimed, case = await self._claim(case.id, by)
        if not claimed and case.state.provider_status == "processing":
            # Asked again while the provider is still at it: ask where it stands, refund nothing.
            before = case.state.status
            try:
                case = await self.check_with_provider(case.id) or case
            except ProviderError as error:
                log.info("refund.check_failed case=%s code=%s", case.id, error.code)
            if before != "refunded" and case.state.status == "refunded":
                return RefundOutcome(status="refunded", case=case)
        if not claimed:
            return RefundOutcome(status="already", case=case)
        try:
            if rail == "stars":
                result = await self._refund_stars(case)
            else:
                result = await rail.refund(order_id=case.order_id, refund_id=case.id, amount_fen=amount,
                                           total_fen=case.amount_fen, reason=REASON_TEXT.format(order_id=case.order_id))
        except (RefundRefused, StarRefundRefused) as refusal:
            code = refusal.code
            log.warning("refund.refused case=%s provider=%s code=%s", case.id, case.provider, code)
            case = await self._record(case.id, lambda st: _refused(st, code))
            return RefundOutcome(status="refused", case=case, called=True, problem=code)
        except ProviderError as error:
            code = error.code
            log.warning("refund.retry case=%s provider=%s code=%s", case.id, case.provider, code)
            case = await self._record(case.id, lambda st: _pending_again(st, code))
            return RefundOutcome(status="retry", case=case, called=True, problem=code)
        case = await self._record(case.id, lambda st: _apply_result(st, result, self._clock.now()))
        log.info("refund.asked case=%s provider=%s status=%s", case.id, case.provider, case.state.status)
        status: Literal["refunded", "refunding", "manual"] = (
            "refunded" if case.state.status == "refunded" else "manual" if case.state.status == "manual"
            else "refunding")
        return RefundOutcome(status=status, case=case, called=True)

    async def mark_done(self, case_id: str, *, by: str, note: str) -> RefundOutcome:
        """A person paid the case back outside the bot (the provider's dashboard, a bank transfer):
        the case is refunded by hand, with who, when and their note. Once: marking it again, or a
        case refunded already, changes nothing ("already"). Refused while a rail is refunding it
        ("busy": its outcome comes first, or the buyer would be paid twice)."""
        note = " ".join(note.split())[:NOTE_MAX]
        case = await self.case(case_id)
        if case is None:
            return RefundOutcome(status="unknown")
        if not note:
            return RefundOutcome(status="refused", case=case, problem="note")
        now, amount = self._clock.now(), case.amount_fen
        seen: list[RefundStatus] = []

        def mark(state: RefundState) -> RefundState | None:
            seen[:] = [state.status]
            if state.status in ("refunded", "refunding"):
                return None
            return state.model_copy(update={
                "status": "refunded", "by": by, "note": note, "provider_status": BY_HAND, "problem": None,
                "refunded_fen": state.refunded_fen or amount, "refunded_at": now, "claimed_at": None})

        case = await self._record(case_id, mark)
        before = seen[0] if seen else case.state.status
        if before == "refunding":
            return RefundOutcome(status="busy", case=case, problem="refunding")
        if before == "refunded":
            return RefundOutcome(status="already", case=case)
        log.info("refund.marked_done case=%s by=%s", case_id, by)
        return RefundOutcome(status="marked", case=case)

    async def apply_notice(self, notice: RefundNotice, *, provider: str) -> tuple[RefundCase | None, bool]:
        """A verified refund notice: the case's outcome is stored. Returns the case (None when the
        notice is for no case of ours) and whether this notice made it refunded."""
        case = await self.case(notice.refund_id)
        if case is None or case.provider != provider or case.order_id != notice.order_id:
            log.warning("refund.notice_unknown refund=%s provider=%s", notice.refund_id, provider)
            return None, False
        before = case.state.status
        result = RefundResult(refund_id=notice.refund_id, order_id=notice.order_id,
                              amount_fen=notice.amount_fen or case.state.refunded_fen or case.amount_fen,
                              status=notice.status, payment_id=notice.payment_id,
                              provider_refund_id=notice.provider_refund_id, refunded_at=notice.refunded_at)
        case = await self._record(case.id, lambda st: _apply_result(st, result, self._clock.now()))
        return case, before != "refunded" and case.state.status == "refunded"

    async def check_with_provider(self, case_id: str) -> RefundCase | None:
        """Ask the provider where a refund stands (reconciliation, a refund left refunding)."""
        case = await self.case(case_id)
        rail = self._rail(case) if case is not None else None
        if case is None or rail is None or isinstance(rail, str):
            return case
        result = await rail.query_refund(order_id=case.order_id, refund_id=case.id)
        if result is None:
            return case
        return await self._record(case.id, lambda st: _apply_result(st, result, self._clock.now()))

    async def claim_telling(self, case_id: str) -> bool:
        """True for the one caller that tells the buyer of this refund."""
        return bool(await self._redis.set(keys.refund_told(case_id), 1, nx=True, ex=TOLD_SECONDS))

    async def release_telling(self, case_id: str) -> None:
        await self._redis.delete(keys.refund_told(case_id))

    def rail_name(self, case: RefundCase) -> str:
        """How the case would be refunded: a gateway's name, stars, manual, or none."""
        rail = self._rail(case)
        return rail if isinstance(rail, str) else "none" if rail is None else case.provider

    # --- inside -----------------------------------------------------------------------------------

    def _rail(self, case: RefundCase) -> RefundingGateway | Literal["stars", "manual"] | None:
        if case.provider == "telegram":
            return "stars" if case.currency == STARS and self.stars is not None else \
                None if case.currency == STARS else "manual"
        return self._gateways.get(case.provider)

    async def _refund_stars(self, case: RefundCase) -> RefundResult:
        assert self.stars is not None
        if case.payer_id is None:
            raise StarRefundRefused("payer_unknown")
        await self.stars.refund_star_payment(case.payer_id, case.charge_id)
        return RefundResult(refund_id=case.id, order_id=case.order_id, amount_fen=case.amount_fen,
                            status="succeeded", payment_id=case.charge_id, refunded_at=self._clock.now())

    async def _claim(self, case_id: str, by: str) -> tuple[bool, RefundCase]:
        now = self._clock.now()
        claimed: list[bool] = []

        def claim(state: RefundState) -> RefundState | None:
            claimed.clear()
            stale = (state.status == "refunding" and state.provider_status is None and state.claimed_at is not None
                     and now - state.claimed_at > timedelta(seconds=CLAIM_SECONDS))
            if state.status != "pending" and not stale:
                return None
            claimed.append(True)
            return state.model_copy(update={"status": "refunding", "by": by, "claimed_at": now, "updated_at": now,
                                            "attempts": state.attempts + 1, "problem": None})

        case = await self._record(case_id, claim)
        return bool(claimed), case

    async def _record(self, case_id: str, mutate: Callable[[RefundState], RefundState | None]) -> RefundCase:
        """Change the case's state atomically; `mutate` returns None to leave it as it is."""
        key = keys.refund_state(case_id)
        now = self._clock.now()

        def decide(values: list[str | None]) -> Decision[RefundState]:
            (raw,) = values
            state = RefundState.model_validate_json(raw) if raw else RefundState()
            changed = mutate(state)
            if changed is None:
                return Decision(state)
            changed.updated_at = now
            return Decision(changed, lambda pipe: pipe.set(key, changed.model_dump_json()))

        state = await transact(self._redis, [key], decide)
        record = next(r for r in await refund_cases(self._redis) if r.get("id") == case_id)
        return RefundCase.of(record, state)


def _apply_result(state: RefundState, result: RefundResult, now: datetime) -> RefundState | None:
    if state.status == "refunded":
        return None  # a late "processing" never undoes a refund made
    status = RESULT_STATUS[result.status]
    return state.model_copy(update={
        "status": status, "refunded_fen": result.amount_fen, "provider_status": result.status,
        "provider_refund_id": result.provider_refund_id or state.provider_refund_id,
        "refunded_at": result.refunded_at or (now if status == "refunded" else None),
        "problem": None if status != "manual" else f"provider_{result.status}",
    })


def _refused(state: RefundState, code: str) -> RefundState:
    return state.model_copy(update={"status": "refused", "problem": code, "provider_status": "refused"})


def _pending_again(state: RefundState, code: str) -> RefundState:
    return state.model_copy(update={"status": "pending", "problem": code, "claimed_at": None})


def _manual(state: RefundState, problem: str) -> RefundState | None:
    if state.status in ("refunded", "manual"):
        return None
    return state.model_copy(update={"status": "manual", "problem": problem})
