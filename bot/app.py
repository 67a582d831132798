"""The composition root: every service is built once, here, and so is the dispatcher. Production,
the playground and every test use these factories; there is no second wiring.

    build_context(settings, redis)   the services (framework-free), the conversation store,
                                     the web checkout and its payment gateway
    build_dispatcher(app, bot)       the routers, the middlewares and the help desk
The web app (bot.web.build_web_app) takes what these built."""
from __future__ import annotations

import logging
from datetime import timedelta

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
    renew,
    support,
    trial,
    upgrade,
    value_added,
)
from bot.flows.support.desk import Desk
from bot.middlewares import Conversations
from bot.runtime.logs import LogContext
from bot.runtime.metrics import UpdateMetrics
from bot.state.conversations import ConversationStorage, ConversationStore
from config.settings import Settings
from config.texts import Texts
from services.catalog import Catalog, load_catalog
from services.checkout import CheckoutLinks, WebCheckout
from services.clock import Clock, SystemClock
from services.codes import CodePolicy, PhoneCodeService
from services.enterprises import RedisEnterpriseDirectory
from services.orders import OrderService
from services.payment_gateway import PaymentGateway, SandboxGateway
from services.sms import SmsGateway, build_sms_gateway
from services.support import SupportService
from services.support_config import SupportConfig, load_support_config
from services.trials import TrialService

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
) -> AppContext:
    clock = clock or SystemClock()
    catalog = catalog or load_catalog(settings.catalog_path)
    texts = texts or Texts.load()
    sms = sms or build_sms(settings, clock)
    support_config = support_config or load_support_config(settings.support_config_path)
    zh = texts.for_lang("zh")
    en = texts.for_lang("en")
    orders = OrderService(redis, clock, catalog)
    codes = PhoneCodeService(redis, clock, sms, settings.code_secret.get_secret_value().encode(),
                             texts=lambda lang: (en if lang == "en" else zh)("phone.sms"),
                             policy=CodePolicy(country_codes=frozenset(settings.sms_country_codes) or None))
    enterprises = RedisEnterpriseDirectory(redis, clock)
    links = CheckoutLinks(redis, clock, orders, base_url=settings.public_base_url,
                          ttl=timedelta(minutes=settings.checkout_link_ttl_minutes))
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
        web_checkout=WebCheckout(links, redis=redis, clock=clock, catalog=catalog, orders=orders, codes=codes,
                                 enterprises=enterprises),
        gateway=gateway or build_gateway(settings, redis, clock),
        support=SupportService(redis, clock, support_config),
        trials=TrialService(redis, clock, catalog),
    )


def build_gateway(settings: Settings, redis: Redis, clock: Clock) -> PaymentGateway:
    """The web payment gateway named by WEB_GATEWAY."""
    if settings.web_gateway_name == "sandbox":
        if settings.environment == "production":
            log.warning("web.gateway=sandbox in production: no real money is taken")
        return SandboxGateway(redis, clock, settings.payment_notify_secret.get_secret_value().encode(),
                              pay_base_url=settings.public_base_url,
                              max_age_seconds=settings.payment_notify_max_age_seconds)
    raise ValueError(f"unknown WEB_GATEWAY {settings.web_gateway_name!r}")


def build_dispatcher(app: AppContext, bot: Bot) -> Dispatcher:
    """The dispatcher for `bot`: handlers get `app` and the help desk (`desk`) with each update."""
    # The conversation middleware keeps the FSM (bot.middlewares); dp.storage reads the same store.
    storage = ConversationStorage(app.conversations)
    dp = Dispatcher(storage=storage, disable_fsm=True)
    dp["app"] = app
    dp["desk"] = Desk(bot, app)
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
