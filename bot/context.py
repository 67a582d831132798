"""What the handlers, the web app and the jobs are given: the services, built once per process
by the composition root (bot.app)."""
from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis

from bot.state.conversations import ConversationStore
from config.settings import Settings
from config.texts import Texts
from services.catalog import Catalog
from services.checkout import CheckoutLinks, WebCheckout
from services.clock import Clock
from services.codes import PhoneCodeService
from services.enterprises import RedisEnterpriseDirectory
from services.orders import OrderService
from services.payment_gateway import PaymentGateway
from services.refunds import RefundService
from services.sms import SmsGateway
from services.support import SupportService
from services.trials import TrialService
from services.web_payments import WebPayments


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
    conversations: ConversationStore  # the one way to open and change a conversation
    checkout: CheckoutLinks  # web checkout links (F12): link_for_cart, link_for_order
    web_checkout: WebCheckout  # the web checkout's steps (F12, R3)
    gateways: list[PaymentGateway]  # the web payment gateways (WEB_GATEWAY), the default first
    support: SupportService  # customer service (F11, R16, R17): tickets, queue, transcripts
    trials: TrialService  # 申请试用 (R14, R15): trials and their lead records
    refunds: RefundService  # refund cases paid back through the rail that took the money (R21)
    web_payments: WebPayments  # a web order's payment at its provider: opened, followed, closed on expiry

    @property
    def gateway(self) -> PaymentGateway:
        """The default web payment gateway."""
        return self.gateways[0]

    def gateway_named(self, name: str) -> PaymentGateway | None:
        return next((g for g in self.gateways if g.name == name), None)
