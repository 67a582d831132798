"""Web checkout (F12, R1–R3): links the chat hands out, and the steps of the web purchase.

`CheckoutLinks` makes the links: `<PUBLIC_BASE_URL>/checkout/<token>`, where the token is
random and opaque (`secrets.token_urlsafe`), kept in Redis and tied to one Telegram user and
one cart (a purchase the chat could not take, R2) or one existing order (an agent's order,
a renewal). A link opens until it expires (CHECKOUT_LINK_TTL_MINUTES, by the injected clock)
or its order is paid; its record outlives it a while so that an expired link is told apart
from an unknown one and a paid one still shows its result.

`WebCheckout` holds the steps the web page takes: choose years and add-on pack when the chat
had not, verify a phone by SMS (R3: the enterprise's security phone, 安全手机, for a purchase
for a verified enterprise; otherwise the buyer's own), 提交订单 (an order on the web channel,
in the buyer's 我的订单), and the gateway's payment notice applied once (services.orders).
"""
from __future__ import annotations

import hashlib
import json
import logging
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel
from redis.asyncio import Redis

from services import keys
from services.catalog import Cart, Catalog, Quote, quote
from services.clock import Clock
from services.codes import PhoneCodeService, VerifyResult
from services.enterprises import Enterprise, RedisEnterpriseDirectory
from services.orders import Channel, Order, OrderService, OrderStatus, PaymentOutcome
from services.payment_gateway import PaymentNotice
from services.phones import InvalidPhone, mask_phone, normalize_phone
from services.purchase_policy import PurchasePlan, plan_purchase
from services.redis_text import text_or_none
from services.sms import SmsDeliveryError
from services.text_input import TextRefused
from services.text_input import enterprise_name as clean_enterprise_name
from services.transactions import Decision, transact

log = logging.getLogger(__name__)

TOKEN_PATTERN = re.compile(r"^[A-Za-z0-9_-]{20,64}$")
# A link's record is kept this long after it expires: "expired" rather than "unknown", and the
# result page of a paid order still opens.
GRACE = timedelta(days=7)
TELL_CLAIM_SECONDS = 30 * 86400
PERSONAL = "personal"


def charge_id(provider: str, payment_id: str) -> str:
    """The order's charge id for a web payment: the provider's payment id, namespaced."""
    return f"{provider}:{payment_id}"


def fingerprint(token: str) -> str:
    """What the logs may say about a token: never the token itself."""
    return hashlib.sha256(token.encode()).hexdigest()[:8]


class CheckoutLink(BaseModel):
    token: str
    user_id: int
    chat_id: int
    lang: str = "zh"
    cart: Cart = Cart()
    cart_id: str
    cart_editable: bool = False  # the chat's cart was not complete: years and pack are chosen here
    for_order: bool = False  # made for an existing order (link_for_order): nothing to choose or submit
    order_id: str | None = None
    phone: str | None = None  # the buyer's phone verified in chat, E.164
    enterprise_name: str | None = None  # as typed in chat (R11)
    enterprise_id: str | None = None  # a purchase for this verified enterprise (its security phone, R3)
    buyer: str | None = None  # whose phone the page verifies: "personal" or an enterprise id
    pending_phone: str | None = None  # the code was sent here
    verified_phone: str | None = None  # verified on the web page (R3)
    created_at: datetime
    expires_at: datetime
    origin: str = ""  # what the chat offered, to hand out the same link again

    def live(self, now: datetime) -> bool:
        return now < self.expires_at


class LinkLookup(BaseModel):
    status: Literal["ok", "unknown", "expired"]
    link: CheckoutLink | None = None


def _digest(*parts: object) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:24]


class CheckoutLinks:
    """Checkout links: made for a cart or an order, reused while live, looked up by token."""

    def __init__(self, redis: Redis, clock: Clock, orders: OrderService, *, base_url: str,
                 ttl: timedelta = timedelta(minutes=30)) -> None:
        self._redis = redis
        self._clock = clock
        self._orders = orders
        self.base_url = base_url.rstrip("/")
        self.ttl = ttl

    def url(self, token: str) -> str:
        return f"{self.base_url}/checkout/{token}"

    async def link_for_order(self, order: Order, *, lang: str = "zh") -> str:
        """The full URL for an existing order; a live token for that order is reused."""
        origin = _digest("order", order.id)

        def build(token: str, now: datetime) -> CheckoutLink:
            return CheckoutLink(
                token=token, user_id=order.user_id, chat_id=order.chat_id, lang=lang,
                cart=Cart(edition=order.edition, years=order.years, pack=order.pack, pack_chosen=True),
                cart_id=secrets.token_hex(8), for_order=True, order_id=order.id, phone=order.phone,
                enterprise_name=order.enterprise_name,
                # An enterprise's own order (F7–F9): its security phone is verified (R3).
                enterprise_id=order.enterprise_id if order.for_enterprise else None,
                created_at=now, expires_at=now + self.ttl, origin=origin,
            )

        return self.url(await self._issue(keys.checkout_order(order.id), origin, build, reuse_paid=True))

    async def link_for_cart(
        self,
        *,
        user_id: int,
        chat_id: int,
        cart: Cart,
        phone: str | None,
        enterprise_name: str | None,
        enterprise_id: str | None = None,
        lang: str = "zh",
    ) -> str:
        """The full URL for a cart held in chat (complete or not: the page asks for what is
        missing). Offering the same cart again gives the same link while it is live and unpaid."""
        cart = cart.model_copy()
        origin = _digest("cart", chat_id, cart.model_dump(), phone, enterprise_name, enterprise_id)
        complete = bool(cart.edition and cart.years and cart.pack_chosen)

        def build(token: str, now: datetime) -> CheckoutLink:
            return CheckoutLink(
                token=token, user_id=user_id, chat_id=chat_id, lang=lang, cart=cart,
                cart_id=secrets.token_hex(8), cart_editable=not complete, phone=phone,
                enterprise_name=enterprise_name, enterprise_id=enterprise_id,
                created_at=now, expires_at=now + self.ttl, origin=origin,
            )

        return self.url(await self._issue(keys.checkout_cart(user_id, origin), origin, build, reuse_paid=False))

    async def _issue(self, index_key: str, origin: str, build: Callable[[str, datetime], CheckoutLink],
                     *, reuse_paid: bool) -> str:
        now = self._clock.now()
        token = text_or_none(await self._redis.get(index_key))
        if token:
            link = await self.get(token)
            if (link is not None and link.origin == origin and link.live(now)
                    and (reuse_paid or not await self._spent(link))):
                # Handed out again by its owner: it lives on from now.
                def renew(lk: CheckoutLink) -> None:
                    lk.expires_at = max(lk.expires_at, now + self.ttl)

                renewed = await self.update(token, renew)
                if renewed is not None:
                    return token
        token = secrets.token_urlsafe(24)
        link = build(token, now)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.set(keys.checkout_link(token), link.model_dump_json(), ex=self._keep_seconds(link))
            pipe.set(index_key, token, ex=self._keep_seconds(link))
            await pipe.execute()
        log.info("checkout.link_made user=%s link=%s for_order=%s", link.user_id, fingerprint(token), link.for_order)
        return token

    async def _spent(self, link: CheckoutLink) -> bool:
        if not link.order_id:
            return False
        order = await self._orders.get(link.order_id)
        return order is not None and order.status in (OrderStatus.PAID, OrderStatus.BOUND)

    def _keep_seconds(self, link: CheckoutLink) -> int:
        return max(60, int((link.expires_at + GRACE - self._clock.now()).total_seconds()))

    async def get(self, token: str) -> CheckoutLink | None:
        if not TOKEN_PATTERN.match(token or ""):
            return None
        raw = await self._redis.get(keys.checkout_link(token))
        return CheckoutLink.model_validate_json(raw) if raw else None

    async def open(self, token: str) -> LinkLookup:
        """A token from a URL: unknown (never made, tampered, long gone), expired, or the link."""
        link = await self.get(token)
        if link is None:
            return LinkLookup(status="unknown")
        if not link.live(self._clock.now()):
            return LinkLookup(status="expired", link=link)
        return LinkLookup(status="ok", link=link)

    async def update(self, token: str, mutate: Callable[[CheckoutLink], object]) -> CheckoutLink | None:
        """Change a link atomically (mutate may run again when another writer wins)."""
        key = keys.checkout_link(token)

        def decide(values: list[str | None]) -> Decision[CheckoutLink | None]:
            (raw,) = values
            if raw is None:
                return Decision(None)
            link = CheckoutLink.model_validate_json(raw)
            mutate(link)
            return Decision(link, lambda pipe: pipe.set(key, link.model_dump_json(), ex=self._keep_seconds(link)))

        return await transact(self._redis, [key], decide)

    async def for_order(self, order_id: str) -> CheckoutLink | None:
        """The link an order was made or paid through, if any (its language, its chat)."""
        token = text_or_none(await self._redis.get(keys.checkout_order(order_id)))
        return await self.get(token) if token else None


# --- the steps of the web page -------------------------------------------------------------------


@dataclass(frozen=True)
class Buyer:
    """Whose phone the page verifies (R3)."""

    key: str  # "personal" or an enterprise id
    phone: str  # E.164
    enterprise: Enterprise | None = None

    @property
    def masked(self) -> str:
        return mask_phone(self.phone)


class SendOutcome(BaseModel):
    status: Literal["sent", "cooldown", "phone_limit", "prove_ownership", "user_limit", "not_served", "invalid_phone",
                    "send_failed", "no_buyer"]
    retry_after: int = 0
    phone: str | None = None


class SubmitOutcome(BaseModel):
    status: Literal["ok", "incomplete", "not_verified", "name_needed", "name_invalid", "name_unsafe", "paid", "refused"]
    reason: str | None = None  # refused: "downgrade" (R5, R18)
    order: Order | None = None


class NoticeOutcome(BaseModel):
    status: Literal["paid", "duplicate", "refund_pending"]
    reason: str | None = None
    order: Order | None = None


class ChooseOutcome(BaseModel):
    status: Literal["ok", "invalid", "locked"]


class WebCheckout:
    def __init__(self, links: CheckoutLinks, *, redis: Redis, clock: Clock, catalog: Catalog,
                 orders: OrderService, codes: PhoneCodeService, enterprises: RedisEnterpriseDirectory) -> None:
        self.links = links
        self._redis = redis
        self._clock = clock
        self.catalog = catalog
        self._orders = orders
        self._codes = codes
        self._enterprises = enterprises

    # --- reading --------------------------------------------------------------------------------

    def quote(self, link: CheckoutLink) -> Quote | None:
        """The priced cart, or None while years or the add-on pack are still to be chosen."""
        try:
            return quote(self.catalog, link.cart)
        except ValueError:
            return None

    async def order(self, link: CheckoutLink) -> Order | None:
        return await self._orders.get(link.order_id) if link.order_id else None

    async def plan(self, link: CheckoutLink) -> PurchasePlan | None:
        """The cart priced for whom it is bought (R18): the enterprise whose 安全手机 was verified
        is known, so what it has decides (a renewal, an upgrade, or a refused downgrade); a
        personal buyer's is a plain new edition, bound after payment. None while incomplete."""
        if link.for_order or self.quote(link) is None:
            return None
        buyer = await self.buyer(link) if self.verified(link) else None
        enterprise = buyer.enterprise if buyer is not None else None
        return plan_purchase(self.catalog, link.cart, enterprise, self._clock.now())

    async def buyers(self, link: CheckoutLink) -> list[Buyer]:
        """Who may verify: the enterprise the purchase is for, or the verified enterprises the
        buyer's chat phone may buy for (super or billing admin), then the buyer personally.
        Empty: the page asks for a phone number (personal)."""
        if link.enterprise_id:
            ent = await self._enterprises.get(link.enterprise_id)
            return [Buyer(ent.id, ent.security_phone, ent)] if ent and ent.verified and ent.security_phone else []
        if not link.phone:
            return []
        found = [
            Buyer(ent.id, ent.security_phone, ent)
            for ent in await self._enterprises.for_phone(link.phone)
            if ent.verified and ent.security_phone and ent.members.get(link.phone) and ent.members[link.phone].can_buy
        ]
        return [*found, Buyer(PERSONAL, link.phone)]

    async def buyer(self, link: CheckoutLink) -> Buyer | None:
        """The buyer the link's verification is for (after a code was sent)."""
        if link.buyer is None:
            return None
        if link.buyer == PERSONAL:
            phone = link.verified_phone or link.pending_phone
            if not phone:
                return None
            return Buyer(PERSONAL, phone, await self._secured_by(link, link.verified_phone))
        return next((b for b in await self.buyers(link) if b.key == link.buyer), None)

    async def _secured_by(self, link: CheckoutLink, phone: str | None) -> Enterprise | None:
        """R3, R19: a phone typed on the page (the chat knew none) and verified here that is the
        安全手机 of one verified enterprise: the purchase is that enterprise's, delivered to it at
        payment and priced on what it has (R18), not left to be bound."""
        if phone is None or link.phone or link.enterprise_id:
            return None
        secured = [e for e in await self._enterprises.for_phone(phone) if e.verified and e.security_phone == phone]
        return secured[0] if len(secured) == 1 else None

    def verified(self, link: CheckoutLink) -> bool:
        return link.verified_phone is not None

    # --- changing -------------------------------------------------------------------------------

    async def choose(self, link: CheckoutLink, *, years: int | None, pack: str | None) -> ChooseOutcome:
        """Years and add-on pack, for a link whose cart the chat had not completed."""
        if not link.cart_editable or link.for_order:
            return ChooseOutcome(status="locked")
        order = await self.order(link)
        if order is not None and order.status is not OrderStatus.EXPIRED and order.status is not OrderStatus.CANCELLED:
            return ChooseOutcome(status="locked")  # an order is open or paid: its cart is fixed
        pack_code = None if pack in (None, "", "none") else pack
        if years not in self.catalog.years or (pack_code is not None and self.catalog.pack(pack_code) is None):
            return ChooseOutcome(status="invalid")

        def mutate(lk: CheckoutLink) -> None:
            lk.cart = lk.cart.model_copy(update={"years": years, "pack": pack_code, "pack_chosen": True})

        await self.links.update(link.token, mutate)
        return ChooseOutcome(status="ok")

    async def reselect(self, link: CheckoutLink) -> ChooseOutcome:
        """Back to choosing years and pack (only where the page chose them, before an order)."""
        if not link.cart_editable or link.for_order:
            return ChooseOutcome(status="locked")
        order = await self.order(link)
        if order is not None and order.status in (OrderStatus.PENDING, OrderStatus.PAID, OrderStatus.BOUND):
            return ChooseOutcome(status="locked")

        def mutate(lk: CheckoutLink) -> None:
            lk.cart = lk.cart.model_copy(update={"years": None, "pack": None, "pack_chosen": False})

        await self.links.update(link.token, mutate)
        return ChooseOutcome(status="ok")

    async def change_phone(self, link: CheckoutLink) -> None:
        """Forget the phone being verified (another buyer or number); the code stays unusable here."""
        def mutate(lk: CheckoutLink) -> None:
            lk.pending_phone = lk.buyer = lk.verified_phone = None

        await self.links.update(link.token, mutate)

    async def send_code(self, link: CheckoutLink, *, buyer_key: str | None, typed_phone: str | None = None,
                        lang: str = "zh") -> SendOutcome:
        """Send the code (R3) to the chosen buyer's phone: an enterprise's security phone, the
        phone verified in chat, or a typed one when the chat verified none. Same service and
        limits as in chat (services.codes)."""
        buyers = await self.buyers(link)
        if buyers:
            chosen = next((b for b in buyers if b.key == (buyer_key or buyers[0].key)), None)
            if chosen is None:
                return SendOutcome(status="no_buyer")
            key, phone = chosen.key, chosen.phone
        elif link.enterprise_id:
            return SendOutcome(status="no_buyer")  # the enterprise has no security phone on file
        else:
            try:
                phone = normalize_phone(typed_phone or link.pending_phone or "")
            except InvalidPhone:
                return SendOutcome(status="invalid_phone")
            key = PERSONAL
        try:
            result = await self._codes.send(link.user_id, phone, lang)
        except SmsDeliveryError:
            return SendOutcome(status="send_failed")
        except InvalidPhone:
            return SendOutcome(status="invalid_phone")
        if result.status in ("sent", "cooldown"):
            def mutate(lk: CheckoutLink) -> None:
                if lk.pending_phone != phone or lk.buyer != key:
                    lk.verified_phone = None  # another phone: verify it
                lk.buyer, lk.pending_phone = key, phone

            await self.links.update(link.token, mutate)
        return SendOutcome(status=result.status, retry_after=result.retry_after, phone=phone)

    async def verify(self, link: CheckoutLink, code: str) -> VerifyResult:
        if not link.pending_phone:
            return VerifyResult(status="no_code")
        result = await self._codes.verify(link.user_id, link.pending_phone, code)
        if result.ok:
            phone = link.pending_phone

            def mutate(lk: CheckoutLink) -> None:
                lk.verified_phone, lk.pending_phone = phone, None

            await self.links.update(link.token, mutate)
            log.info("checkout.verified link=%s phone=%s", fingerprint(link.token), mask_phone(phone))
        return result

    async def submit(self, link: CheckoutLink, *, enterprise_name: str | None) -> SubmitOutcome:
        """提交订单: one order per cart (a double submit gives the same order); a cart whose order
        expired or was cancelled makes a new one."""
        q = self.quote(link)
        if q is None:
            return SubmitOutcome(status="incomplete")
        if not link.verified_phone:
            return SubmitOutcome(status="not_verified")
        existing = await self.order(link)
        if existing is not None and existing.status is OrderStatus.PENDING:
            return SubmitOutcome(status="ok", order=existing)
        if existing is not None and existing.status in (OrderStatus.PAID, OrderStatus.BOUND):
            return SubmitOutcome(status="paid", order=existing)
        if link.for_order:
            return SubmitOutcome(status="incomplete")  # its order is closed: nothing to submit
        buyer = await self.buyer(link)
        enterprise = buyer.enterprise if buyer is not None else None
        upgrade = None
        if enterprise is not None:  # bought for it, delivered at payment (R19), priced on what it has (R18)
            plan = plan_purchase(self.catalog, link.cart, enterprise, self._clock.now())
            if plan.refusal is not None or plan.quote is None:
                return SubmitOutcome(status="refused", reason=plan.refusal)
            q, upgrade, name = plan.quote, plan.upgrade_basis(), enterprise.name
        else:
            try:  # NFKC; no direction or invisible characters (services.text_input)
                name = clean_enterprise_name(enterprise_name or link.enterprise_name or "")
            except TextRefused as refused:
                return SubmitOutcome(status="name_needed" if refused.reason == "empty" else
                                     "name_unsafe" if refused.reason in ("invisible", "control") else "name_invalid")
        cart_id = link.cart_id if existing is None else secrets.token_hex(8)
        order, _ = await self._orders.create(
            user_id=link.user_id, chat_id=link.chat_id, cart_id=cart_id, quote=q,
            channel=Channel.WEB, phone=link.verified_phone, enterprise_name=name,
            enterprise_id=enterprise.id if enterprise is not None else None, upgrade=upgrade,
        )

        def mutate(lk: CheckoutLink) -> None:
            lk.order_id, lk.cart_id, lk.enterprise_name = order.id, cart_id, name
            lk.expires_at = max(lk.expires_at, order.expires_at)  # the link lives while the order can be paid

        await self.links.update(link.token, mutate)
        await self._redis.set(keys.checkout_order(order.id), link.token,
                              ex=int((order.expires_at + GRACE - self._clock.now()).total_seconds()))
        log.info("checkout.submitted link=%s order=%s", fingerprint(link.token), order.id)
        return SubmitOutcome(status="ok", order=order)

    # --- the payment notice -----------------------------------------------------------------------

    async def apply_notice(self, notice: PaymentNotice, *, provider: str) -> NoticeOutcome:
        """A verified notice means the provider took the money: it is applied once (a repeat is
        a duplicate), or, when it cannot be (another amount or currency, an unknown, expired or
        cancelled order), kept for a refund (R21) — never refused and forgotten."""
        outcome: PaymentOutcome = await self._orders.mark_paid(
            notice.order_id, charge_id=charge_id(provider, notice.payment_id),
            amount_fen=notice.amount_fen, currency=notice.currency, provider=provider,
        )
        if outcome.status == "unknown_order":
            return NoticeOutcome(status="refund_pending", reason="unknown_order")
        return NoticeOutcome(status=outcome.status, reason=outcome.reason, order=outcome.order)

    async def claim_telling(self, charge_id: str) -> bool:
        """True for the one caller that tells the chat of this payment."""
        return bool(await self._redis.set(keys.checkout_told(charge_id), 1, nx=True, ex=TELL_CLAIM_SECONDS))

    async def release_telling(self, charge_id: str) -> None:
        """The chat could not be told: a repeated notice may try again."""
        await self._redis.delete(keys.checkout_told(charge_id))
