"""The checkout pages (F12): one GET page showing the current step, and one POST per action,
each answered by a redirect back to the page (or the page again with what was wrong).

    GET  /checkout/{token}            summary + the current step: choose · verify · submit · pay
    POST /checkout/{token}/choose     years and add-on pack (a cart the chat had not completed)
    POST /checkout/{token}/reselect   back to choosing
    POST /checkout/{token}/code       send (or resend) the SMS code (R3)
    POST /checkout/{token}/verify     check it
    POST /checkout/{token}/change     verify another buyer or number
    POST /checkout/{token}/submit     提交订单, then off to the gateway's cashier page
    POST /checkout/{token}/pay        pay a submitted order (again; `gateway` chooses among several)
    GET  /checkout/{token}/wechat     WeChat Pay's QR code (Native), following the payment
    GET  /checkout/{token}/result     where the gateway sends the buyer back
    POST /checkout/{token}/miniapp    the Mini App's initData check (JSON)

Every POST checks the origin and the CSRF token; a form from a Telegram Mini App also carries
initData, which must be valid, recent and the link's own user's.
"""
from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import segno
from aiohttp import web
from markupsafe import Markup

from bot.screens import edition_name, local_date, local_time, pack_name
from bot.web.miniapp import InitDataRejected, validate_init_data
from bot.web.payments import after_payment
from bot.web.render import choose_lang
from bot.web.security import CSRF_FIELD, client_ip, same_origin
from bot.web.state import PageError, WebState, state
from config.texts import Translator
from services.alipay import AlipayGateway
from services.catalog import Quote, QuoteLine, format_fen
from services.checkout import PERSONAL, CheckoutLink, fingerprint
from services.enterprises import Enterprise
from services.orders import Order, OrderStatus
from services.payment_gateway import PaymentGateway
from services.phones import mask_phone
from services.purchase_policy import PurchasePlan
from services.web_payments import PaymentMethod, Way
from services.wechat_pay import WechatPayGateway

log = logging.getLogger("bot.web")

# (requests, window seconds) per link, and per client address for code sending.
CODE_LIMIT = (5, 600)
CODE_LIMIT_PER_IP = (20, 600)
VERIFY_LIMIT = (10, 600)
PAY_LIMIT = (10, 600)
FORM_LIMIT = (60, 600)
REFRESH_SECONDS = 3
PAID = (OrderStatus.PAID, OrderStatus.BOUND)
CLOSED = (OrderStatus.EXPIRED, OrderStatus.CANCELLED)


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/checkout/{token}", page)
    router.add_post("/checkout/{token}/choose", choose)
    router.add_post("/checkout/{token}/reselect", reselect)
    router.add_post("/checkout/{token}/code", send_code)
    router.add_post("/checkout/{token}/verify", verify)
    router.add_post("/checkout/{token}/change", change)
    router.add_post("/checkout/{token}/submit", submit)
    router.add_post("/checkout/{token}/pay", pay)
    router.add_get("/checkout/{token}/wechat", wechat_native)
    router.add_get("/checkout/{token}/result", result)
    router.add_post("/checkout/{token}/miniapp", miniapp)


def see_other(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location})


def base_path(link: CheckoutLink) -> str:
    return f"/checkout/{link.token}"


# --- the link, the form and the limits -----------------------------------------------------------


async def open_link(request: web.Request, *, expired_ok: bool = False) -> tuple[CheckoutLink, str]:
    """The link of the URL and the page's language; an unknown (or tampered) token is a 404
    page, an expired one a 410 page."""
    lookup = await state(request).links.open(request.match_info["token"])
    if lookup.link is None:
        raise PageError(404, "unknown", lang=choose_lang(request, None))
    lang = choose_lang(request, lookup.link.lang)
    if lookup.status == "expired" and not (expired_ok and lookup.link.order_id):
        raise PageError(410, "expired", lang=lang)
    return lookup.link, lang


async def read_form(request: web.Request, link: CheckoutLink, lang: str) -> Any:
    """The posted form, when it is our own page's: same origin, and a valid CSRF token — or, in
    a Mini App (where the browser may withhold our cookie), the link's user's valid initData."""
    st = state(request)
    form = await request.post()
    if not same_origin(request, st.public_origin):
        raise PageError(403, "csrf", lang=lang)
    from_miniapp = await check_miniapp(request, form, link, lang)
    if not from_miniapp and not st.csrf.valid(request, str(form.get(CSRF_FIELD, "")), link.token):
        raise PageError(403, "csrf", lang=lang)
    return form


async def check_miniapp(request: web.Request, form: Any, link: CheckoutLink, lang: str) -> bool:
    """True when the form carries valid initData of the link's user; it is refused when it
    carries any other initData (forged, too old, another bot's, another user's)."""
    init_data = str(form.get("tg_init_data", ""))
    if not init_data:
        return False
    st = state(request)
    try:
        user = validate_init_data(init_data, st.bot.token, now=st.app.clock.now(),
                                  max_age_seconds=st.settings.miniapp_init_data_max_age_seconds)
    except InitDataRejected as refusal:
        log.info("web.miniapp_refused link=%s reason=%s", fingerprint(link.token), refusal.reason)
        raise PageError(403, "miniapp", lang=lang) from None
    if user.id != link.user_id:
        log.info("web.miniapp_refused link=%s reason=other_user", fingerprint(link.token))
        raise PageError(403, "not_yours", lang=lang)
    return True


async def limit(request: web.Request, scope: str, who: str, rule: tuple[int, int], lang: str) -> None:
    count, window = rule
    wait = await state(request).limiter.hit(scope, who, limit=count, window_seconds=window)
    if wait:
        log.info("web.rate_limited scope=%s", scope)
        raise PageError(429, "rate", lang=lang, headers={"Retry-After": str(wait)}, seconds=wait)


# --- the page --------------------------------------------------------------------------------------


def line_label(tr: Translator, line: QuoteLine) -> str:
    if line.kind == "edition":
        return tr("checkout.summary.line_edition", name=edition_name(tr, line.code), years=line.quantity)
    if line.kind == "pack":
        return pack_name(tr, line.code)
    try:  # upgrades and value-added services (F7–F9) name their own lines
        from bot.screens.billing import line_label as billing_line_label

        return billing_line_label(tr, line)
    except Exception:
        return line.code


def order_label(tr: Translator, order: Order) -> str:
    """What the order buys, in a few words (the cashier's item, the result page)."""
    if getattr(order, "kind", "edition") != "edition":
        try:
            from bot.screens.billing import order_label as billing_order_label

            return billing_order_label(tr, order)
        except Exception:
            pass
    return "、".join(line_label(tr, line) for line in order.lines) if tr.lang == "zh" else \
        ", ".join(line_label(tr, line) for line in order.lines)


def summary_view(st: WebState, tr: Translator, link: CheckoutLink, order: Order | None,
                 priced: Quote | None = None) -> dict[str, Any]:
    """The order summary: facts (edition, years, pack, contracts, order id), lines and total
    (`priced`: the cart as priced for the enterprise it is bought for, R18)."""
    cat = st.app.catalog
    cart = link.cart
    shown: Order | Quote | None = order if order is not None else priced or st.checkout.quote(link)
    facts: list[tuple[str, str, str]] = []
    kind = str(shown.kind.value if isinstance(shown, Order) else shown.kind) if shown is not None else "edition"
    code = shown.edition if shown is not None else cart.edition or ""
    edition = cat.edition(code)
    if edition is not None and kind == "edition":
        facts.append((tr("checkout.summary.edition"), edition_name(tr, code),
                      tr("checkout.summary.price_per_year", price=format_fen(edition.price_per_year_fen),
                         contracts=f"{edition.contracts_per_year:,}")))
        years = shown.years if shown is not None else cart.years
        facts.append((tr("checkout.summary.years"), tr("checkout.summary.years_value", years=years) if years
                      else tr("checkout.summary.years_unset"), ""))
        if shown is not None:
            facts.append((tr("checkout.summary.pack"), pack_name(tr, shown.pack), ""))
    if shown is None:
        return {"facts": facts, "lines": [], "total": None}
    lines, total, contracts = shown.lines, shown.total_fen, shown.contracts
    if contracts:
        facts.append((tr("checkout.summary.contracts"), tr("checkout.summary.contracts_value",
                                                          contracts=f"{contracts:,}"), ""))
    if order is not None:
        facts.append((tr("checkout.summary.order_id"), order.id, ""))
    return {
        "facts": facts,
        "lines": [(line_label(tr, line), format_fen(line.amount_fen)) for line in lines],
        "total": format_fen(total),
    }


async def render_checkout(request: web.Request, link: CheckoutLink, lang: str, *, status: int = 200,
                          message: tuple[str, str] | None = None, typed: dict[str, str] | None = None) -> web.StreamResponse:
    st = state(request)
    tr = st.renderer.tr(lang)
    typed = typed or {}
    order = await st.checkout.order(link)
    if order is not None and order.status in PAID:
        return see_other(f"{base_path(link)}/result")
    if link.for_order and (order is None or order.status in CLOSED):
        status_text = tr(f"status.{order.status.value}") if order else tr("status.expired")
        raise PageError(410, "order_closed", lang=lang, order_status=status_text)
    complete = link.for_order or st.checkout.quote(link) is not None
    priced: Quote | None = None
    context: dict[str, Any] = {"choose": None, "verify": None, "submit": None, "pay": None}
    if not complete:
        step, index = "choose", 1
        ed = st.app.catalog.edition(link.cart.edition or "")
        years = [(y, tr("checkout.choose.years_option", years=y, price=format_fen(ed.price_per_year_fen * y)),
                  y == link.cart.years) for y in st.app.catalog.years] if ed else []
        packs = [("none", tr("pack.none"), link.cart.pack_chosen and link.cart.pack is None)]
        packs += [(p.code, tr("checkout.choose.pack_option", name=pack_name(tr, p.code), price=format_fen(p.price_fen)),
                   link.cart.pack == p.code) for p in st.app.catalog.addon_packs]
        context["choose"] = {"years": years, "packs": packs}
    elif not st.checkout.verified(link):
        step, index = "verify", 2
        buyers = await st.checkout.buyers(link)
        options = [
            (b.key, tr("checkout.verify.buyer_enterprise", name=b.enterprise.name, phone=b.masked) if b.enterprise
             else tr("checkout.verify.buyer_personal", phone=b.masked), i == 0)
            for i, b in enumerate(buyers)
        ]
        single = ""
        if len(buyers) == 1:
            b = buyers[0]
            single = (tr("checkout.verify.for_enterprise", name=b.enterprise.name, phone=b.masked) if b.enterprise
                      else tr("checkout.verify.for_personal", phone=b.masked))
        context["verify"] = {
            "pending": mask_phone(link.pending_phone) if link.pending_phone else None,
            "pending_buyer": link.buyer or PERSONAL,
            "buyers": options, "single_text": single,
            "no_buyer": bool(link.enterprise_id) and not buyers,
            "phone_value": typed.get("phone", ""),
        }
    elif order is not None and order.status is OrderStatus.PENDING:
        step, index = "pay", 4
        context["pay"] = {"text": tr("checkout.pay.pending", order_id=order.id, total=format_fen(order.total_fen),
                                     at=local_time(order.expires_at)),
                          "methods": payment_choices(st, tr)}
    else:
        step, index = "submit", 3
        buyer = await st.checkout.buyer(link)
        ent = buyer.enterprise if buyer else None
        plan = await st.checkout.plan(link)
        refused = plan is not None and plan.refused and ent is not None
        if refused and message is None:
            assert plan is not None and ent is not None
            message = ("error", tr("buy.refused_downgrade", name=ent.name, current=edition_name(tr, plan.current_edition),
                                   expiry=local_date(plan.current_expiry, tr), edition=edition_name(tr, link.cart.edition or "")))
        context["submit"] = {
            "verified": mask_phone(link.verified_phone or ""),
            "enterprise": ent.name if ent else None,
            "needs_name": ent is None and not link.enterprise_name,
            "name_value": typed.get("enterprise_name", link.enterprise_name or ""),
            "can_change": link.cart_editable and not link.for_order,
            "plan": plan_lines(tr, plan, ent, st.app.clock.now()) if plan is not None and ent is not None else [],
            "refused": refused,
        }
        if plan is not None and plan.quote is not None and ent is not None:
            priced = plan.quote
        if order is not None and order.status in CLOSED and message is None:
            message = ("notice", tr("checkout.submit.reopened"))
        order = None  # a closed order's lines are not this page's
    return st.renderer.page(
        request, "checkout.html", lang=lang, status=status, here=base_path(link), base=base_path(link),
        step=step, step_index=index, summary=summary_view(st, tr, link, order, priced),
        message={"kind": message[0], "text": message[1]} if message else None,
        csrf=st.csrf.token(request, link.token),
        miniapp_check=f"{base_path(link)}/miniapp", **context,
    )


def plan_lines(tr: Translator, plan: PurchasePlan, ent: Enterprise, now: datetime) -> list[str]:
    """What the purchase is for the enterprise (R18), as the chat's confirmation says it."""
    from bot.screens.billing import renewal_end, upgrade_calculation

    q = plan.quote
    if q is None:
        return []
    lines = [tr("buy.confirm_for", name=ent.name, edition=edition_name(tr, plan.current_edition),
                expiry=local_date(plan.current_expiry, tr))]
    if plan.kind == "renewal":
        lines.append(tr("buy.plan_renewal", edition=edition_name(tr, q.edition), before=local_date(plan.current_expiry, tr),
                        after=local_date(renewal_end(ent, q.years, now), tr)))
    elif plan.kind == "upgrade" and plan.upgrade is not None:
        lines.append(tr("buy.plan_upgrade", source=edition_name(tr, plan.current_edition), name=edition_name(tr, q.edition)))
        lines += upgrade_calculation(tr, plan.upgrade)
    else:
        lines.append(tr("buy.plan_edition", edition=edition_name(tr, q.edition)))
    lines.append(tr("buy.delivered_at_once", name=ent.name))
    return lines


async def page(request: web.Request) -> web.StreamResponse:
    link, lang = await open_link(request)
    return await render_checkout(request, link, lang)


# --- the actions ---------------------------------------------------------------------------------


async def choose(request: web.Request) -> web.StreamResponse:
    link, lang = await open_link(request)
    form = await read_form(request, link, lang)
    await limit(request, "form", link.token, FORM_LIMIT, lang)
    years = str(form.get("years", ""))
    outcome = await state(request).checkout.choose(
        link, years=int(years) if years.isdigit() else None, pack=str(form.get("pack", "")) or None)
    if outcome.status == "ok":
        return see_other(base_path(link))
    tr = state(request).renderer.tr(lang)
    return await render_checkout(request, link, lang, status=400 if outcome.status == "invalid" else 409,
                                 message=("error", tr(f"checkout.choose.{outcome.status}")))


async def reselect(request: web.Request) -> web.StreamResponse:
    link, lang = await open_link(request)
    await read_form(request, link, lang)
    await limit(request, "form", link.token, FORM_LIMIT, lang)
    outcome = await state(request).checkout.reselect(link)
    if outcome.status == "ok":
        return see_other(base_path(link))
    tr = state(request).renderer.tr(lang)
    return await render_checkout(request, link, lang, status=409, message=("error", tr("checkout.choose.locked")))


async def send_code(request: web.Request) -> web.StreamResponse:
    st = state(request)
    link, lang = await open_link(request)
    form = await read_form(request, link, lang)
    await limit(request, "code", link.token, CODE_LIMIT, lang)
    await limit(request, "code-ip", client_ip(request), CODE_LIMIT_PER_IP, lang)
    tr = st.renderer.tr(lang)
    typed = str(form.get("phone", "")).strip()
    outcome = await st.checkout.send_code(link, buyer_key=str(form.get("buyer", "")) or None,
                                          typed_phone=typed or None, lang=lang)
    if outcome.status == "sent":
        return see_other(base_path(link))
    link = await st.links.get(link.token) or link
    messages = {
        "cooldown": (200, tr("phone.cooldown", seconds=outcome.retry_after)),
        "phone_limit": (429, tr("phone.phone_limit", minutes=-(-outcome.retry_after // 60))),
        "prove_ownership": (429, tr("phone.prove_ownership_web", minutes=-(-outcome.retry_after // 60))),
        "user_limit": (429, tr("phone.user_limit")),
        "not_served": (400, tr("phone.not_served")),
        "invalid_phone": (400, tr("phone.invalid")),
        "send_failed": (502, tr("phone.send_failed")),
        "no_buyer": (400, tr("checkout.verify.no_buyer")),
    }
    status, text = messages[outcome.status]
    return await render_checkout(request, link, lang, status=status, message=("error", text),
                                 typed={"phone": typed})


async def verify(request: web.Request) -> web.StreamResponse:
    st = state(request)
    link, lang = await open_link(request)
    form = await read_form(request, link, lang)
    await limit(request, "verify", link.token, VERIFY_LIMIT, lang)
    result = await st.checkout.verify(link, str(form.get("code", "")))
    if result.ok:
        return see_other(base_path(link))
    tr = st.renderer.tr(lang)
    text = tr("phone.wrong", left=result.attempts_left) if result.status == "wrong" else tr(f"phone.{result.status}")
    return await render_checkout(request, await st.links.get(link.token) or link, lang, status=400,
                                 message=("error", text))


async def change(request: web.Request) -> web.StreamResponse:
    link, lang = await open_link(request)
    await read_form(request, link, lang)
    await limit(request, "form", link.token, FORM_LIMIT, lang)
    await state(request).checkout.change_phone(link)
    return see_other(base_path(link))


async def submit(request: web.Request) -> web.StreamResponse:
    st = state(request)
    link, lang = await open_link(request)
    form = await read_form(request, link, lang)
    await limit(request, "pay", link.token, PAY_LIMIT, lang)
    name = str(form.get("enterprise_name", ""))
    outcome = await st.checkout.submit(link, enterprise_name=name or None)
    if outcome.status == "paid":
        return see_other(f"{base_path(link)}/result")
    if outcome.status != "ok" or outcome.order is None:
        tr = st.renderer.tr(lang)
        return await render_checkout(request, link, lang, status=400,
                                     message=("error", tr(f"checkout.submit.{outcome.status}")),
                                     typed={"enterprise_name": name})
    if len(st.app.gateways) > 1:
        return see_other(base_path(link))  # the pay step: the buyer chooses WeChat Pay or Alipay
    return await to_cashier(request, await st.links.get(link.token) or link, outcome.order, lang)


async def pay(request: web.Request) -> web.StreamResponse:
    st = state(request)
    link, lang = await open_link(request)
    form = await read_form(request, link, lang)
    await limit(request, "pay", link.token, PAY_LIMIT, lang)
    order = await st.checkout.order(link)
    if order is not None and order.status in PAID:
        return see_other(f"{base_path(link)}/result")
    if order is None or order.status is not OrderStatus.PENDING or not st.checkout.verified(link):
        return see_other(base_path(link))  # the page shows the step that comes first
    return await to_cashier(request, link, order, lang, gateway_name=str(form.get("gateway", "")) or None)


def payment_choices(st: WebState, tr: Translator) -> list[tuple[str, str]]:
    """The gateways the buyer may choose among (one: a single 去支付 button)."""
    if len(st.app.gateways) < 2:
        return []
    return [(g.name, tr(f"checkout.pay.via_{g.name}")) for g in st.app.gateways]


def is_phone(request: web.Request) -> bool:
    agent = request.headers.get("User-Agent", "")
    return any(word in agent for word in ("Mobile", "Android", "iPhone", "iPad", "HarmonyOS"))


def in_wechat(request: web.Request) -> bool:
    return "MicroMessenger" in request.headers.get("User-Agent", "")


def way_for(gateway: PaymentGateway, request: web.Request) -> Way:
    """How this browser pays: WeChat Pay's QR on a computer, its H5 page on a phone; inside
    WeChat's own browser (which refuses H5) its JSAPI sheet when configured, else the QR to
    long-press; Alipay's computer or phone cashier; the sandbox's own page."""
    if isinstance(gateway, WechatPayGateway):
        if in_wechat(request):
            return "jsapi" if gateway.oauth is not None else "native"
        return "h5" if is_phone(request) else "native"
    if isinstance(gateway, AlipayGateway):
        return "wap" if is_phone(request) else "pc"
    return "cashier"


async def to_cashier(request: web.Request, link: CheckoutLink, order: Order, lang: str, *,
                     gateway_name: str | None = None, openid: str | None = None) -> web.StreamResponse:
    """Open (or reuse) the payment of the order at the chosen gateway, in the way that suits the
    browser, and send the buyer on: to the provider's page, or to our page with its QR code or
    WeChat's sheet. JSAPI needs the buyer's openid first (bot/web/wechat_jsapi.py)."""
    st = state(request)
    tr = st.renderer.tr(lang)
    gateway = st.app.gateway_named(gateway_name) if gateway_name else st.gateway
    if gateway is None:
        raise PageError(400, "bad_request", lang=lang)
    base = st.settings.public_base_url
    method = PaymentMethod(gateway=gateway.name, way=way_for(gateway, request))
    if method.way == "jsapi" and openid is None:
        return see_other(f"{base_path(link)}/wechat/jsapi")  # WeChat's OAuth first, for the openid
    try:
        opened = await st.app.web_payments.open(
            order, method, description=order_label(tr, order), notify_url=f"{base}/payments/notify/{gateway.name}",
            return_url=f"{base}{base_path(link)}/result", client_ip=client_ip(request), openid=openid)
    except Exception:
        log.exception("web.gateway_failed order=%s gateway=%s", order.id, gateway.name)
        return await render_checkout(request, link, lang, status=502,
                                     message=("error", tr("checkout.pay.gateway_failed")))
    if opened.applied is not None:  # the way chosen before had been paid meanwhile
        await after_payment(st, opened.applied.gateway, opened.applied.notice, opened.applied.outcome)
        return see_other(f"{base_path(link)}/result")
    assert opened.payment is not None
    log.info("web.to_cashier order=%s link=%s gateway=%s way=%s", order.id, fingerprint(link.token), gateway.name,
             method.way)
    if opened.payment.way == "native":
        return see_other(f"{base_path(link)}/wechat")
    if opened.payment.way == "jsapi":
        return see_other(f"{base_path(link)}/wechat/jsapi")
    return see_other(opened.payment.pay_url)


async def follow(st: WebState, order: Order) -> Order:
    """The buyer waits on our page: after a while the provider is asked, and a payment it
    confirms is applied and told like a notice. The order as it is now."""
    applied = await st.app.web_payments.follow(order)
    if applied is None:
        return order
    await after_payment(st, applied.gateway, applied.notice, applied.outcome)
    return applied.outcome.order or order


async def wechat_native(request: web.Request) -> web.StreamResponse:
    """WeChat Pay's QR code for a computer: the buyer scans it with WeChat; the page refreshes
    itself on our order's state (no JavaScript), and asks WeChat Pay after a while."""
    st = state(request)
    link, lang = await open_link(request, expired_ok=True)
    order = await st.checkout.order(link)
    opened = await st.app.web_payments.current(order.id) if order is not None else None
    if order is None or opened is None or opened.way != "native" or not opened.code_url:
        return see_other(base_path(link))
    if order.status is OrderStatus.PENDING:
        order = await follow(st, order)
    if order.status is not OrderStatus.PENDING:
        return see_other(f"{base_path(link)}/result")
    tr = st.renderer.tr(lang)
    qr = segno.make(opened.code_url, error="m")
    return st.renderer.page(
        request, "wechat_native.html", lang=lang, here=f"{base_path(link)}/wechat", base=base_path(link),
        step_index=4, qr_svg=Markup(qr.svg_inline(scale=5, title=tr("checkout.wechat.qr_title"))),
        code_url=opened.code_url, total=format_fen(order.total_fen), order_id=order.id,
        until=local_time(order.expires_at), refresh_seconds=REFRESH_SECONDS,
        summary=summary_view(st, tr, link, order), csrf=st.csrf.token(request, link.token),
    )


# --- the result and the Mini App check --------------------------------------------------------------


async def result(request: web.Request) -> web.StreamResponse:
    st = state(request)
    link, lang = await open_link(request, expired_ok=True)
    order = await st.checkout.order(link)
    if order is None:
        return see_other(base_path(link))
    tr = st.renderer.tr(lang)
    summary = summary_view(st, tr, link, order)
    refresh, bind = 0, False
    if order.status in PAID:
        kind, index = "paid", 6
        title = tr("checkout.result.paid_title")
        lines = [tr("checkout.result.paid_body", order_id=order.id, label=order_label(tr, order),
                    total=format_fen(order.total_fen), status=tr(f"status.{order.status.value}"))]
        delivery = order.delivery
        if delivery is not None:  # delivered: with the payment (R19, F7–F9) or bound since (R12)
            lines.append(tr("checkout.result.delivered_next", name=delivery.enterprise_name))
        elif order.status is OrderStatus.PAID:
            lines += [tr("pay.reminder"), tr("checkout.result.paid_next")]
        bind = delivery is None and order.status is OrderStatus.PAID  # only then is there a 立即绑定 to do
    elif order.status is OrderStatus.PENDING and request.query.get("payment") == "cancelled":
        kind, index = "cancelled", 4
        title = tr("checkout.result.cancelled_title")
        lines = [tr("checkout.result.cancelled_body", order_id=order.id, at=local_time(order.expires_at))]
    elif order.status is OrderStatus.PENDING and (order := await follow(st, order)).status in PAID:
        return see_other(f"{base_path(link)}/result")
    elif order.status is OrderStatus.PENDING:
        kind, index, refresh = "waiting", 4, REFRESH_SECONDS
        title = tr("checkout.result.waiting_title")
        lines = [tr("checkout.result.waiting_body")]
    else:
        kind, index = "closed", 4
        title = tr("checkout.result.closed_title")
        lines = [tr("checkout.result.closed_body", order_id=order.id, status=tr(f"status.{order.status.value}"))]
        if any(event.kind == "refund_pending" for event in order.events):
            lines.append(tr("checkout.result.refund_body", order_id=order.id))
    return st.renderer.page(
        request, "result.html", lang=lang, here=f"{base_path(link)}/result", base=base_path(link),
        step_index=index, result={"kind": kind, "title": title, "lines": lines, "bind": bind}, summary=summary,
        chat_url=await st.chat_url(f"web_{order.id}"), csrf=st.csrf.token(request, link.token),
        refresh_seconds=refresh,
    )


async def miniapp(request: web.Request) -> web.StreamResponse:
    """The page's first look at Telegram's initData (JSON): ok, or why the page cannot go on."""
    st = state(request)
    try:
        link, lang = await open_link(request)
        await limit(request, "form", link.token, FORM_LIMIT, lang)
        form = await request.post()
        if not same_origin(request, st.public_origin):
            raise PageError(403, "csrf", lang=lang)
        if not await check_miniapp(request, form, link, lang):
            raise PageError(403, "miniapp", lang=lang)
    except PageError as refusal:
        tr = st.renderer.tr(refusal.lang or "zh")
        return web.json_response({
            "ok": False, "reason": refusal.key, "title": tr(f"checkout.error.{refusal.key}_title"),
            "body": tr(f"checkout.error.{refusal.key}_body", **refusal.params) if refusal.params
            else tr(f"checkout.error.{refusal.key}_body"),
        }, status=refusal.status)
    return web.json_response({"ok": True})
