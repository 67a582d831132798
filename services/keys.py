"""Every Redis key the services use, in one place. All live under the `esign:` namespace.

| key                                   | type   | what                                             |
|---------------------------------------|--------|--------------------------------------------------|
| esign:order:{order_id}                | string | one order, JSON (services.orders.Order)          |
| esign:user:{user_id}:orders           | zset   | a buyer's order ids, scored by creation time     |
| esign:cart-order:{cart_id}            | string | the order a cart became (double-tap guard)       |
| esign:charge:{charge_id}              | string | the order a payment charge was applied to        |
| esign:refunds                         | list   | payments kept for a refund (JSON)                |
| esign:ent:{enterprise_id}             | string | one enterprise, JSON (services.enterprises)      |
| esign:ents                            | set    | all enterprise ids                               |
| esign:phone:{e164}:ents               | set    | enterprises a phone is a member of               |
| esign:code:{e164}                     | hash   | the live SMS code for a phone (HMAC only)        |
| esign:code-sent:{e164}:{hour|day}     | string | codes sent to a phone in a window (counter)      |
| esign:code-user:{user_id}:{day}       | string | codes a user asked for in a day (counter)        |
| esign:code-cooldown:{e164}            | string | when the next code may be sent (clock timestamp) |
| esign:update:{bot_id}:{update_id}     | string | update already handled (dedup)                   |
| fsm:{bot_id}:...                      | string | aiogram FSM state and data (aiogram's builder)   |
"""
from __future__ import annotations

NS = "esign"


def order(order_id: str) -> str:
    return f"{NS}:order:{order_id}"


def user_orders(user_id: int) -> str:
    return f"{NS}:user:{user_id}:orders"


def cart_order(cart_id: str) -> str:
    return f"{NS}:cart-order:{cart_id}"


def charge(charge_id: str) -> str:
    return f"{NS}:charge:{charge_id}"


def refunds() -> str:
    return f"{NS}:refunds"


def enterprise(enterprise_id: str) -> str:
    return f"{NS}:ent:{enterprise_id}"


def enterprises() -> str:
    return f"{NS}:ents"


def phone_enterprises(phone: str) -> str:
    return f"{NS}:phone:{phone}:ents"


def code(phone: str) -> str:
    return f"{NS}:code:{phone}"


def codes_sent(phone: str, window: str) -> str:
    return f"{NS}:code-sent:{phone}:{window}"


def codes_by_user(user_id: int, window: str) -> str:
    return f"{NS}:code-user:{user_id}:{window}"


def code_cooldown(phone: str) -> str:
    return f"{NS}:code-cooldown:{phone}"


def update_seen(bot_id: int, update_id: int) -> str:
    return f"{NS}:update:{bot_id}:{update_id}"
