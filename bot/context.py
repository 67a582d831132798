"""What the handlers are given: the services, built once per process by the composition root."""
from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis

from config.settings import Settings
from config.texts import Texts
from services.catalog import Catalog
from services.clock import Clock
from services.codes import PhoneCodeService
from services.enterprises import RedisEnterpriseDirectory
from services.orders import OrderService
from services.sms import SmsGateway


@dataclass
class AppContext:
    settings: Settings
    catalog: Catalog
    texts: Texts
    redis: Redis
    clock: Clock
    sms: SmsGateway
    orders: OrderService
    codes: PhoneCodeService
    enterprises: RedisEnterpriseDirectory
