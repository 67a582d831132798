"""The composition root: every service is built once, here, and so is the dispatcher. Production,
the playground and every test use these factories; there is no second wiring.

    build_context(settings, redis)   the services (framework-free), the conversation store,
                                     the web checkout and its payment gateway
    build_dispatcher(app, bot)       the routers, the middlewares and the help desk
The web app (bot.web.build_web_app) takes what these built."""
from __future__ import annotations

import logging
from datetime import timedelta
from urllib.parse import urlsplit

from aiogram import Bot, Dispatcher
from aiogram.utils.callback_answer import CallbackAnswerMiddleware
from redis.asyncio import Redis

from bot import errors
from bot.context import AppContext
from bot.flows import (
    billing,
    bind,
    buy,
    fallback,
    groups,
    home,
    info,
    orders,
    payment,
    phone,
    refunds,
    renew,
    support,
    trial,
    upgrade,
    value_added,
)
from bot.flows.support.desk import Desk
from bot.middlewares import Conversations
from bot.refunds import BotStarRefunds
from bot.runtime.aiogram_tuning import TunedDispatcher
from bot.runtime.logs import LogContext
from bot.runtime.metrics import UpdateMetrics
from bot.state.conversations import ConversationStorage, ConversationStore
from config import payment_rails
from config.settings import Settings
from config.texts import Texts
from services.alipay import alipay_gateway
from services.catalog import Catalog, load_catalog
from services.checkout import CheckoutLinks, WebCheckout
from services.clock import Clock, SystemClock
from services.codes import CodePolicy, PhoneCodeService
from services.enterprises import RedisEnterpriseDirectory
from services.orders import OrderService
from services.payment_gateway import PaymentGateway, SandboxGateway
from services.payment_refunds import RefundingGateway
from services.refunds import RefundService
from services.sms import SmsGateway, build_sms_gateway
from services.support import SupportService
from services.support_config import SupportConfig, load_support_config
from services.trials import TrialService
from services.web_payments import WebPayments
from services.wechat_oauth import WechatOAuth
from services.wechat_pay import API_BASE as WECHAT_API
from services.wechat_pay import H5_CASHIER_ORIGIN, wechat_pay_gateway

log = logging.getLogger(__name__)


def build_sms(settings: Settings, clock: Clock) -> SmsGateway:
    if settings.sms_backend == "http":
        return build_sms_gateway(
            "http",
            url=settings.sms_api_url,
            api_key=settings.sms_api_key.get_secret_value() if settings.sms_api_key else "",
            sign_name=settings.sms_sign_name,
        )
    return build_sms_gateway("console", clock=clock)


def build_context(
    settings: Settings,
    redis: Redis,
    *,
    clock: Clock | None = None,
    sms: SmsGateway | None = None,
    catalog: Catalog | None = None,
    texts: Texts | None = None,
    support_config: SupportConfig | None = None,
    gateway: PaymentGateway | None = None,
    gateways: list[PaymentGateway] | None = None,
) -> AppContext:
    """The services. `gateway` (or several, `gateways`, the default first) stands in for the web
    payment gateways WEB_GATEWAY names."""
    clock = clock or SystemClock()
    catalog = catalog or load_catalog(settings.catalog_path)
    texts = texts or Texts.load()
    sms = sms or build_sms(settings, clock)
    support_config = support_config or load_support_config(settings.support_config_path)
    zh = texts.for_lang("zh")
    en = texts.for_lang("en")
    orders = OrderService(redis, clock, catalog, chat_currency=settings.chat_currency)
    codes = PhoneCodeService(redis, clock, sms, settings.code_secret.get_secret_value().encode(),
                             texts=lambda lang: (en if lang == "en" else zh)("phone.sms"),
                             policy=CodePolicy(country_codes=frozenset(settings.sms_country_codes) or None))
    enterprises = RedisEnterpriseDirectory(redis, clock)
    web_gateways = gateways or ([gateway] if gateway is not None else build_gateways(settings, redis, clock))
    links = CheckoutLinks(redis, clock, orders, base_url=settings.public_base_url,
                          ttl=timedelta(minutes=settings.checkout_link_ttl_minutes))
    web_checkout = WebCheckout(links, redis=redis, clock=clock, catalog=catalog, orders=orders, codes=codes,
                               enterprises=enterprises)
    return AppContext(
        settings=settings,
        catalog=catalog,
        texts=texts,
        redis=redis,
        clock=clock,
        sms=sms,
        orders=orders,
        codes=codes,
        enterprises=enterprises,
        conversations=ConversationStore(redis, ttl_seconds=settings.session_ttl_days * 86400,
                                        dedup_seconds=settings.update_dedup_seconds),
        checkout=links,
        web_checkout=web_checkout,
        gateways=web_gateways,
        support=SupportService(redis, clock, support_config),
        trials=TrialService(redis, clock, catalog),
        refunds=RefundService(redis, clock, {g.name: g for g in web_gateways if isinstance(g, RefundingGateway)}),
        web_payments=WebPayments(redis, clock, web_gateways, orders, web_checkout),
    )


def build_gateways(settings: Settings, redis: Redis, clock: Clock) -> list[PaymentGateway]:
    """The web payment gateways named by WEB_GATEWAY, the default first."""
    return [build_gateway(settings, redis, clock, name) for name in settings.web_gateways]


def build_gateway(settings: Settings, redis: Redis, clock: Clock, name: str | None = None) -> PaymentGateway:
    """One web payment gateway (the default one without a name), from its settings. The settings'
    validation has made sure that a chosen provider has its keys, and that they load."""
    name = name or settings.web_gateway_name
    if name == "sandbox":
        return SandboxGateway(redis, clock, settings.payment_notify_secret.get_secret_value().encode(),
                              pay_base_url=settings.public_base_url,
                              max_age_seconds=settings.payment_notify_max_age_seconds)
    if name == "wechat":
        assert settings.wechat_merchant_private_key and settings.wechat_apiv3_key
        return wechat_pay_gateway(
            mchid=settings.wechat_mchid or "", appid=settings.wechat_appid or "",
            merchant_serial=settings.wechat_merchant_serial or "",
            merchant_private_key_pem=payment_rails.wechat_private_key(
                settings.wechat_merchant_private_key.get_secret_value()),
            apiv3_key=settings.wechat_apiv3_key.get_secret_value(),
            platform_public_keys=payment_rails.wechat_platform_keys(settings.wechat_platform_public_keys),
            clock=clock, api_base=settings.wechat_api_base,
            refund_notify_url=f"{settings.public_base_url}/payments/notify/wechat",
            # H5 sends the buyer to WeChat's cashier; a local stand-in serves it from its API's origin.
            cashier_origins=(H5_CASHIER_ORIGIN,) if settings.wechat_api_base == WECHAT_API else (
                origin_of(settings.wechat_api_base),),
            oauth=WechatOAuth(appid=settings.wechat_appid or "", secret=settings.wechat_app_secret.get_secret_value(),
                              clock=clock, oauth_base=settings.wechat_oauth_base,
                              api_base=settings.wechat_sns_api_base)
            if settings.wechat_jsapi and settings.wechat_app_secret else None,
        )
    if name == "alipay":
        assert settings.alipay_app_private_key and settings.alipay_public_key
        gateway = alipay_gateway(
            app_id=settings.alipay_app_id or "",
            app_private_key=payment_rails.alipay_private_key(settings.alipay_app_private_key.get_secret_value()),
            alipay_public_key=payment_rails.alipay_public_key(settings.alipay_public_key),
            clock=clock, gateway_url=settings.alipay_gateway_url, seller_id=settings.alipay_seller_id,
        )
        gateway.notice_max_age = timedelta(seconds=settings.alipay_notify_max_age_seconds)
        return gateway
    raise ValueError(f"unknown WEB_GATEWAY {name!r}")


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def build_dispatcher(app: AppContext, bot: Bot) -> Dispatcher:
    """The dispatcher for `bot`: handlers get `app` and the help desk (`desk`) with each update."""
    # The conversation middleware keeps the FSM (bot.middlewares); dp.storage reads the same store.
    storage = ConversationStorage(app.conversations)
    dispatcher = TunedDispatcher if app.settings.aiogram_tuning else Dispatcher
    dp = dispatcher(storage=storage, disable_fsm=True)
    dp["app"] = app
    dp["desk"] = Desk(bot, app)
    app.refunds.stars = BotStarRefunds(bot)  # refundStarPayment needs this bot
    # Outer update middlewares run inside aiogram's errors middleware: an update that raises
    # unwinds through them (nothing it changed is stored) before the error handlers answer.
    dp.update.outer_middleware(LogContext())
    dp.update.outer_middleware(UpdateMetrics())
    # Groups other than the staff group: left at once, before any conversation key is made.
    dp.update.outer_middleware(groups.GroupGuard(app))
    dp.update.outer_middleware(Conversations(app, storage))
    dp.callback_query.middleware(CallbackAnswerMiddleware())
    dp.callback_query.middleware(errors.LeaveFailedAnswersToTheGuard())
    # An agent's quote paid in chat: the customer's topic in the staff group is told (F11).
    dp.message.middleware(support.TellStaffOfPayments())
    dp.include_routers(
        errors.router(app.texts),
        groups.router(),  # my_chat_member: what the group guard let through
        refunds.router(),  # the staff group's 🔁 退款 and /refunds, before the help desk takes the group
        support.router(),  # the staff group, then 联系客服 / 购买咨询 / 开具发票 (F11, R16, R17)
        home.router(),
        # 费用管理, 版本续费, 升级版本, 增值服务, 申请试用, info screens (F7–F10)
        billing.router(), renew.router(), upgrade.router(), value_added.router(), trial.router(), info.router(),
        payment.router(),
        buy.router(),
        phone.router(),
        orders.router(),
        bind.router(),
        support.relay_router(),  # what no step wanted goes to the agent while a ticket is live
        fallback.router(),
    )
    return dp
