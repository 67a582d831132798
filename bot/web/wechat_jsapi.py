"""WeChat Pay JSAPI: paying inside WeChat's own browser with WeChat's payment sheet.

    GET /checkout/{token}/wechat/jsapi   with a JSAPI payment open: the page that hands its signed
                                         parameters to WeixinJSBridge's getBrandWCPayRequest and
                                         follows the payment; without one: off to WeChat's OAuth
                                         (snsapi_base) for the buyer's openid
    GET /checkout/{token}/wechat/oauth   where WeChat's OAuth sends the buyer back with `code` and
                                         our `state`: the state must be ours, for this order and
                                         this browser, recent and unused, else the return is
                                         refused (403) and nothing is written; then the code is
                                         exchanged for the openid and the payment opened
                                         (POST /v3/pay/transactions/jsapi, payer.openid)
"""
from __future__ import annotations

import json
import logging

from aiohttp import web

from bot.screens import local_time
from bot.web.pages import (
    PAY_LIMIT,
    base_path,
    follow,
    in_wechat,
    limit,
    open_link,
    render_checkout,
    see_other,
    summary_view,
    to_cashier,
)
from bot.web.state import PageError, WebState, state
from services import keys
from services.catalog import format_fen
from services.checkout import fingerprint
from services.orders import OrderStatus
from services.wechat_oauth import STATE_SECONDS, OAuthFailed, WechatOAuth
from services.wechat_pay import WechatPayGateway

log = logging.getLogger("bot.web")


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/checkout/{token}/wechat/jsapi", jsapi_page)
    router.add_get("/checkout/{token}/wechat/oauth", oauth_return)


def jsapi(st: WebState) -> tuple[WechatPayGateway, WechatOAuth] | None:
    """WeChat Pay with JSAPI configured (WECHAT_JSAPI), else None."""
    gateway = st.app.gateway_named("wechat")
    if isinstance(gateway, WechatPayGateway) and gateway.oauth is not None:
        return gateway, gateway.oauth
    return None


async def jsapi_page(request: web.Request) -> web.StreamResponse:
    st = state(request)
    link, lang = await open_link(request, expired_ok=True)
    order = await st.checkout.order(link)
    configured = jsapi(st)
    if configured is None or order is None or not in_wechat(request):
        return see_other(base_path(link))
    gateway, oauth = configured
    if order.status is not OrderStatus.PENDING:
        return see_other(f"{base_path(link)}/result")
    opened = await st.app.web_payments.current(order.id)
    if opened is not None and opened.gateway == gateway.name and opened.way != "jsapi":
        # Opened in another scene before (a computer's QR code): WeChat Pay keeps that one.
        return see_other(f"{base_path(link)}/wechat" if opened.way == "native" else opened.pay_url)
    if opened is None or opened.way != "jsapi" or not opened.prepay_id:
        if not st.checkout.verified(link):
            return see_other(base_path(link))
        redirect_uri = f"{st.settings.public_base_url}{base_path(link)}/wechat/oauth"
        log.info("web.wechat_oauth order=%s link=%s", order.id, fingerprint(link.token))
        return see_other(oauth.authorize_url(redirect_uri, oauth.state(order.id, st.csrf.browser_id(request))))
    order = await follow(st, order)
    if order.status is not OrderStatus.PENDING:
        return see_other(f"{base_path(link)}/result")
    tr = st.renderer.tr(lang)
    params = gateway.jsapi_params(opened.prepay_id)  # signed afresh: a new timeStamp and nonceStr
    return st.renderer.page(
        request, "wechat_jsapi.html", lang=lang, here=f"{base_path(link)}/wechat/jsapi", base=base_path(link),
        step_index=4, params=json.dumps(params, separators=(",", ":")), result_url=f"{base_path(link)}/result",
        total=format_fen(order.total_fen), order_id=order.id, until=local_time(order.expires_at),
        summary=summary_view(st, tr, link, order), csrf=st.csrf.token(request, link.token),
    )


async def oauth_return(request: web.Request) -> web.StreamResponse:
    st = state(request)
    link, lang = await open_link(request)
    configured = jsapi(st)
    if configured is None:
        raise web.HTTPNotFound()
    gateway, oauth = configured
    await limit(request, "pay", link.token, PAY_LIMIT, lang)
    order = await st.checkout.order(link)
    if order is None:
        return see_other(base_path(link))
    nonce = oauth.check_state(request.query.get("state", ""), order.id, st.csrf.browser_id(request))
    if nonce is None or not await st.app.redis.set(keys.wechat_oauth_state(nonce), 1, nx=True,
                                                   ex=2 * STATE_SECONDS):
        log.warning("web.wechat_oauth_refused order=%s link=%s reason=%s", order.id, fingerprint(link.token),
                    "state" if nonce is None else "replayed")
        raise PageError(403, "wechat_oauth", lang=lang)
    if order.status is not OrderStatus.PENDING or not st.checkout.verified(link):
        return see_other(base_path(link))  # the page shows where the order stands
    try:
        openid = await oauth.openid(request.query.get("code", ""))
    except OAuthFailed as failure:
        log.warning("web.wechat_oauth_failed order=%s code=%s", order.id, failure.code)
        tr = st.renderer.tr(lang)
        return await render_checkout(request, link, lang, status=502,
                                     message=("error", tr("checkout.pay.gateway_failed")))
    return await to_cashier(request, link, order, lang, gateway_name=gateway.name, openid=openid)
