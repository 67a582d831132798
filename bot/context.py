"""What the handlers are given: the services, built once per process by the composition root."""
from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis

from config.settings import Settings
from config.texts import Texts
from services.catalog import Catalog
from services.checkout import CheckoutLinks
from services.clock import Clock
from services.codes import PhoneCodeService
from services.enterprises import RedisEnterpriseDirectory
from services.orders import OrderService
from services.sms import SmsGateway
from services.support import SupportService
from services.trials import TrialService


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
    checkout: CheckoutLinks  # web checkout links (F12): link_for_cart, link_for_order
    support: SupportService  # customer service (F11, R16, R17): tickets, queue, transcripts
    trials: TrialService  # 申请试用 (R14, R15): trials and their lead records
