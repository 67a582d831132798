"""The composition root: one factory for the services, one for the dispatcher. Production,
the playground and every test use these; there is no second wiring."""
from __future__ import annotations

from aiogram import Dispatcher
from aiogram.fsm.strategy import FSMStrategy
from aiogram.utils.callback_answer import CallbackAnswerMiddleware
from redis.asyncio import Redis

from bot import errors
from bot.context import AppContext
from bot.flows import bind, buy, fallback, home, orders, payment, phone
from bot.logs import LogContext
from bot.middlewares import DropRepeatedUpdates, SessionAndLanguage, UnitOfWork
from bot.state.storage import build_storage
from config.settings import Settings
from config.texts import Texts
from services.catalog import Catalog, load_catalog
from services.clock import Clock, SystemClock
from services.codes import PhoneCodeService
from services.enterprises import RedisEnterpriseDirectory
from services.orders import OrderService
from services.sms import SmsGateway, build_sms_gateway


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
) -> AppContext:
    clock = clock or SystemClock()
    catalog = catalog or load_catalog(settings.catalog_path)
    texts = texts or Texts.load()
    sms = sms or build_sms(settings, clock)
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
    )


def build_dispatcher(app: AppContext) -> Dispatcher:
    settings = app.settings
    storage, isolation = build_storage(app.redis, ttl_seconds=settings.session_ttl_days * 86400)
    dp = Dispatcher(storage=storage, events_isolation=isolation, fsm_strategy=FSMStrategy.USER_IN_CHAT)
    dp["app"] = app
    # Outer update middlewares run inside aiogram's FSM middleware, i.e. under the user's lock.
    dp.update.outer_middleware(LogContext())
    dp.update.outer_middleware(DropRepeatedUpdates(app.redis, settings.update_dedup_seconds))
    dp.update.outer_middleware(UnitOfWork(storage))
    dp.update.outer_middleware(SessionAndLanguage(app.texts))
    dp.callback_query.middleware(CallbackAnswerMiddleware())
    dp.callback_query.middleware(errors.LeaveFailedAnswersToTheGuard())
    dp.include_routers(
        errors.router(app.texts),
        home.router(),
        payment.router(),
        buy.router(),
        phone.router(),
        orders.router(),
        bind.router(),
        fallback.router(),
    )
    return dp
