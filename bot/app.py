"""The composition root: one factory for the services, one for the dispatcher. Production,
the playground and every test use these; there is no second wiring."""
from __future__ import annotations

from datetime import timedelta

from aiogram import Dispatcher
from aiogram.fsm.strategy import FSMStrategy
from aiogram.utils.callback_answer import CallbackAnswerMiddleware
from redis.asyncio import Redis

from bot import errors
from bot.context import AppContext
from bot.flows import bind, buy, fallback, home, orders, payment, phone
from bot.flows import support
from bot.flows import billing, info, renew, trial, upgrade, value_added
from bot.logs import LogContext
from bot.metrics import UpdateMetrics
from bot.middlewares import (DropRepeatedUpdates, SessionAndLanguage, UnitOfWork, install_session_lock,
                             speed_up_dispatch)
from bot.state.storage import build_storage
from bot.updates import LeanDispatcher
from config.settings import Settings
from config.texts import Texts
from services.catalog import Catalog, load_catalog
from services.checkout import CheckoutLinks
from services.clock import Clock, SystemClock
from services.codes import PhoneCodeService
from services.enterprises import RedisEnterpriseDirectory
from services.orders import OrderService
from services.sms import SmsGateway, build_sms_gateway
from services.support import SupportService
from services.trials import TrialService
from services.support_config import SupportConfig, load_support_config


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
) -> AppContext:
    clock = clock or SystemClock()
    catalog = catalog or load_catalog(settings.catalog_path)
    texts = texts or Texts.load()
    sms = sms or build_sms(settings, clock)
    support_config = support_config or load_support_config(settings.support_config_path)
    zh = texts.for_lang("zh")
    en = texts.for_lang("en")
    return AppContext(
        settings=settings,
        catalog=catalog,
        texts=texts,
        redis=redis,
        clock=clock,
        sms=sms,
        orders=OrderService(redis, clock, catalog),
        codes=PhoneCodeService(
            redis, clock, sms, settings.code_secret.get_secret_value().encode(),
            texts=lambda lang: (en if lang == "en" else zh)("phone.sms"),
        ),
        enterprises=RedisEnterpriseDirectory(redis, clock),
        trials=TrialService(redis, clock, catalog),
        support=SupportService(redis, clock, support_config),
        checkout=CheckoutLinks(redis, clock, OrderService(redis, clock, catalog), base_url=settings.public_base_url,
                               ttl=timedelta(minutes=settings.checkout_link_ttl_minutes)),
    )


def build_dispatcher(app: AppContext) -> Dispatcher:
    settings = app.settings
    storage, isolation = build_storage(app.redis, ttl_seconds=settings.session_ttl_days * 86400)
    dp = LeanDispatcher(storage=storage, events_isolation=isolation, fsm_strategy=FSMStrategy.USER_IN_CHAT,
                        disable_fsm=True)
    # aiogram's FSM middleware with the dedup check folded in: one Redis round trip in, one out.
    install_session_lock(dp, settings.update_dedup_seconds)
    dp["app"] = app
    # Outer update middlewares run inside aiogram's FSM middleware, i.e. under the user's lock.
    dp.update.outer_middleware(LogContext())
    dp.update.outer_middleware(UpdateMetrics())
    dp.update.outer_middleware(DropRepeatedUpdates(app.redis, settings.update_dedup_seconds))
    dp.update.outer_middleware(UnitOfWork(storage))
    dp.update.outer_middleware(SessionAndLanguage(app.texts))
    dp.callback_query.middleware(CallbackAnswerMiddleware())
    dp.callback_query.middleware(errors.LeaveFailedAnswersToTheGuard())
    # An agent's quote paid in chat: the customer's topic in the staff group is told (F11).
    dp.message.middleware(support.TellStaffOfPayments())
    dp.include_routers(
        errors.router(app.texts),
        support.router(),  # the staff group, then 联系客服 / 购买咨询 / 开具发票 (F11, R16, R17)
        home.router(),
        # 费用管理, 版本续费, 升级版本, 增值服务, 申请试用, info screens (F7–F10); before orders: an
        # enterprise's own order is paid from 我的订单 by billing's handler.
        billing.router(), renew.router(), upgrade.router(), value_added.router(), trial.router(), info.router(),
        payment.router(),
        buy.router(),
        phone.router(),
        orders.router(),
        bind.router(),
        support.relay_router(),  # what no step wanted goes to the agent while a ticket is live
        fallback.router(),
    )
    speed_up_dispatch(dp)  # no thread per State / F.text filter; handlers and routers that cannot match skipped
    return dp
