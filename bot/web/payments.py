"""Payment notices and the sandbox's cashier page.

    POST /payments/notify/{gateway}   the gateway's asynchronous notice, payment or refund (a
                                      RefundingGateway says which before it is verified): signature and age
                                      (the gateway), order and amount (services.checkout), then
                                      the payment is applied once and only then answered success;
                                      the chat is told (立即绑定), once per payment
                                      a verified notice that cannot be applied (another
                                      amount, an unknown or closed order) is kept for a refund,
                                      staff are alerted, and it is answered success too
    GET  /sandbox/pay/{payment_id}    the sandbox's cashier page: pay or cancel
    POST /sandbox/pay/{payment_id}
"""
from __future__ import annotations

import logging
from collections.abc import Mapping

from aiogram.fsm.storage.base import StorageKey
from aiohttp import web

from bot import screens
from bot.alerts import alert_refund_pending
from bot.flows.base import open_flow
from bot.flows.support import tell_staff_order_paid
from bot.refunds import tell_buyer
from bot.web.render import choose_lang
from bot.web.security import CSRF_FIELD, client_ip, same_origin
from bot.web.state import PageError, WebState, state
from services.checkout import CheckoutLink, NoticeOutcome, charge_id
from services.orders import Order, OrderStatus
from services.payment_gateway import NoticeRejected, PaymentGateway, PaymentNotice, SandboxGateway
from services.payment_refunds import RefundingGateway

log = logging.getLogger("bot.web")

MAX_NOTICE_BYTES = 64 * 1024
SANDBOX_PAY_LIMIT = (10, 600)
SANDBOX_PAY_LIMIT_PER_IP = (30, 600)


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_post("/payments/notify/{gateway}", notify)
    router.add_get("/sandbox/pay/{payment_id}", sandbox_page)
    router.add_post("/sandbox/pay/{payment_id}", sandbox_action)


# --- the notice ------------------------------------------------------------------------------------


async def notify(request: web.Request) -> web.Response:
    st = state(request)
    gateway = st.app.gateway_named(request.match_info["gateway"])
    if gateway is None:
        return web.json_response({"code": "FAIL", "message": "unknown gateway"}, status=404)
    if (request.content_length or 0) > MAX_NOTICE_BYTES:
        return answer(gateway, False, "too_large")
    body = await request.read()  # the app's client_max_size bounds it too
    if len(body) > MAX_NOTICE_BYTES:
        return answer(gateway, False, "too_large")
    refunding = gateway if isinstance(gateway, RefundingGateway) else None
    kind = refunding.notice_kind(body, request.headers) if refunding is not None else "payment"
    try:
        if kind == "refund" and refunding is not None:
            return await refund_notice(st, gateway, refunding, body, request.headers)
        if kind == "other":  # e.g. Alipay telling that an unpaid trade closed: nothing to store
            log.info("payment.notice_other gateway=%s", gateway.name)
            return answer(gateway, True)
        notice = gateway.verify_notice(body, request.headers)
    except NoticeRejected as refusal:
        log.warning("payment.notice_refused gateway=%s kind=%s reason=%s", gateway.name, kind, refusal.reason)
        return answer(gateway, False, refusal.reason)
    outcome = await st.checkout.apply_notice(notice, provider=gateway.name)
    log.info("payment.notice gateway=%s order=%s outcome=%s reason=%s", gateway.name, notice.order_id,
             outcome.status, outcome.reason)
    await after_payment(st, gateway.name, notice, outcome)
    return answer(gateway, True)


async def refund_notice(st: WebState, gateway: PaymentGateway, refunding: RefundingGateway, body: bytes,
                        headers: Mapping[str, str]) -> web.Response:
    """A refund's outcome: stored on its case, the buyer told once it is back, then answered.
    A verified notice for a refund that is not ours is answered too (nothing to store)."""
    notice = refunding.verify_refund_notice(body, headers)
    case, now_refunded = await st.app.refunds.apply_notice(notice, provider=gateway.name)
    log.info("refund.notice gateway=%s refund=%s status=%s known=%s", gateway.name, notice.refund_id, notice.status,
             case is not None)
    if case is not None and now_refunded:
        await tell_buyer(st.bot, st.app, case)  # never raises
    return answer(gateway, True)


async def after_payment(st: WebState, gateway_name: str, notice: PaymentNotice, outcome: NoticeOutcome) -> None:
    """What follows a stored web payment, from a notice or from asking the provider: staff alerted
    of money kept for a refund, the chat told."""
    if outcome.status == "refund_pending":
        await alert_refund_pending(st.bot, st.app, charge_id=charge_id(gateway_name, notice.payment_id),
                                   order_id=notice.order_id, amount_fen=notice.amount_fen, currency=notice.currency,
                                   reason=outcome.reason or "refund_pending", provider=gateway_name)
    await tell_chat(st, gateway_name, outcome, notice)  # never raises: the payment is stored either way


def answer(gateway: PaymentGateway, accepted: bool, reason: str = "") -> web.Response:
    ack = gateway.ack(accepted, reason)
    return web.Response(status=ack.status, text=ack.body, content_type=ack.content_type)


async def tell_chat(st: WebState, gateway_name: str, outcome: NoticeOutcome, notice: PaymentNotice) -> None:
    """The buyer hears of the payment in the chat: paid (立即绑定, as after an in-chat payment)
    or kept for a refund. Once per payment; a failure lets a repeated notice try again."""
    order = outcome.order
    if order is None:
        return
    charge = charge_id(gateway_name, notice.payment_id)
    applied = order.status in (OrderStatus.PAID, OrderStatus.BOUND) and order.charge_id == charge
    if outcome.status in ("paid", "duplicate") and applied:
        kind = "paid"
    elif outcome.status == "refund_pending":
        kind = "refund"
    else:
        return
    if not await st.checkout.claim_telling(charge):
        return
    try:
        link = await st.links.for_order(order.id)
        tr = st.renderer.tr(link.lang if link else "zh")
        if kind == "paid":
            if getattr(order, "delivery", None) is None:  # delivered orders (F7–F9) need no binding
                await remember_in_chat(st, order, link)
            screen = screens.paid(tr, order)  # 立即绑定, as after an in-chat payment
        else:
            key = f"pay.reason_{outcome.reason}"
            reason = tr(key if tr.has(key) else "pay.reason_other")
            screen = screens.refund_pending(tr, order.id, notice.amount_fen, reason)
        await st.bot.send_message(order.chat_id, screen.text, reply_markup=screen.markup)
        log.info("checkout.chat_told order=%s kind=%s", order.id, kind)
        if kind == "paid" and st.desk is not None:  # F11: the agent's topic hears it too
            await tell_staff_order_paid(st.desk, order.id)
    except Exception:
        log.exception("checkout.chat_not_told order=%s", order.id)
        await st.checkout.release_telling(charge)


async def remember_in_chat(st: WebState, order: Order, link: CheckoutLink | None) -> None:
    """The chat's session learns the order (and the phone verified on the web, when it had none),
    so 立即绑定 works there as after an in-chat payment. Under the user's lock, like an update."""
    key = StorageKey(bot_id=st.bot.id, chat_id=order.chat_id, user_id=order.user_id)
    async with open_flow(st.app, key, st.renderer.tr(link.lang if link else "zh")) as flow:
        flow.session.order_id = order.id
        if not flow.session.phone and link is not None and link.verified_phone:
            flow.session.phone = link.verified_phone


# --- the sandbox's cashier page ------------------------------------------------------------------------


def sandbox(st: WebState) -> SandboxGateway:
    gateway = st.app.gateway_named("sandbox")
    if not isinstance(gateway, SandboxGateway):
        raise web.HTTPNotFound()
    return gateway


async def sandbox_lang(st: WebState, request: web.Request, order_id: str) -> str:
    link = await st.links.for_order(order_id)
    return choose_lang(request, link.lang if link else None)


async def sandbox_page(request: web.Request, *, message: tuple[str, str] | None = None,
                       status: int = 200) -> web.Response:
    st = state(request)
    payment = await sandbox(st).get(request.match_info["payment_id"])
    if payment is None:
        lang = choose_lang(request, None)
        raise PageError(404, "not_found", lang=lang)
    lang = await sandbox_lang(st, request, payment.order_id)
    return st.renderer.page(
        request, "sandbox_pay.html", lang=lang, status=status, here=request.path, payment=payment,
        csrf=st.csrf.token(request, payment.payment_id),
        message={"kind": message[0], "text": message[1]} if message else None,
    )


async def sandbox_action(request: web.Request) -> web.StreamResponse:
    st = state(request)
    gateway = sandbox(st)
    payment_id = request.match_info["payment_id"]
    payment = await gateway.get(payment_id)
    if payment is None:
        raise PageError(404, "not_found", lang=choose_lang(request, None))
    lang = await sandbox_lang(st, request, payment.order_id)
    form = await request.post()
    if not same_origin(request, st.public_origin) or not st.csrf.valid(request, str(form.get(CSRF_FIELD, "")), payment_id):
        raise PageError(403, "csrf", lang=lang)
    for scope, who, (count, window) in (("sandbox-pay", payment_id, SANDBOX_PAY_LIMIT),
                                         ("sandbox-pay-ip", client_ip(request), SANDBOX_PAY_LIMIT_PER_IP)):
        wait = await st.limiter.hit(scope, who, limit=count, window_seconds=window)
        if wait:
            raise PageError(429, "rate", lang=lang, headers={"Retry-After": str(wait)}, seconds=wait)
    action = form.get("action")
    if action == "pay":
        paid = await gateway.pay(payment_id) or payment
        return web.Response(status=303, headers={"Location": paid.return_url})
    if action == "cancel":
        cancelled = await gateway.cancel(payment_id) or payment
        back = cancelled.return_url + ("?payment=cancelled" if cancelled.status == "cancelled" else "")
        return web.Response(status=303, headers={"Location": back})
    raise PageError(400, "bad_request", lang=lang)
