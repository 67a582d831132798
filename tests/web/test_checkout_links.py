"""F12 checkout links (services.checkout.CheckoutLinks, the interface other flows call) and the
Mini App initData check (bot.web.miniapp), on real Redis."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import pytest
from esign_devkit.testing.fake_telegram import sign_init_data

from bot.web.miniapp import InitDataRejected, validate_init_data
from services import keys
from services.catalog import Cart, load_catalog, quote
from services.checkout import CheckoutLinks
from services.orders import Channel, OrderService

BASE = "https://shop.example.com"
CART = Cart(edition="professional", years=1, pack_chosen=True)


@pytest.fixture
def catalog():
    return load_catalog()


@pytest.fixture
def orders(redis, clock, catalog):
    return OrderService(redis, clock, catalog)


@pytest.fixture
def links(redis, clock, orders):
    return CheckoutLinks(redis, clock, orders, base_url=BASE, ttl=timedelta(minutes=30))


def token_of(url: str) -> str:
    assert url.startswith(f"{BASE}/checkout/")
    return url.rsplit("/", 1)[1]


async def test_F12_a_cart_link_is_random_opaque_and_tied_to_its_user_and_cart(links, redis):
    url = await links.link_for_cart(user_id=1, chat_id=1, cart=CART, phone="+8613800138000", enterprise_name="甲公司")
    token = token_of(url)

    assert len(token) == 32 and token != "1" and "professional" not in token
    link = await links.get(token)
    assert link.user_id == 1 and link.chat_id == 1 and link.cart == CART and link.phone == "+8613800138000"
    assert await redis.ttl(keys.checkout_link(token)) > 0  # kept in Redis with a TTL


async def test_F12_the_same_cart_gives_the_same_live_link_and_another_user_or_cart_another(links, clock):
    args = {"chat_id": 1, "cart": CART, "phone": None, "enterprise_name": None}
    first = await links.link_for_cart(user_id=1, **args)
    clock.advance(minutes=20)

    assert await links.link_for_cart(user_id=1, **args) == first
    assert (await links.get(token_of(first))).expires_at == clock.now() + timedelta(minutes=30)  # handed out again
    assert await links.link_for_cart(user_id=2, **{**args, "chat_id": 2}) != first
    assert await links.link_for_cart(user_id=1, **{**args, "cart": Cart(edition="flagship")}) != first
    clock.advance(minutes=31)
    assert await links.link_for_cart(user_id=1, **args) != first  # the old one expired


async def test_F12_an_expired_link_is_told_from_an_unknown_one(links, clock):
    url = await links.link_for_cart(user_id=1, chat_id=1, cart=CART, phone=None, enterprise_name=None)
    assert (await links.open(token_of(url))).status == "ok"
    clock.advance(minutes=30)
    assert (await links.open(token_of(url))).status == "expired"
    assert (await links.open("A" * 32)).status == "unknown"
    assert (await links.open("../../etc/passwd")).status == "unknown"


async def test_F12_link_for_order_reuses_a_live_token_for_that_order(links, orders, catalog, clock):
    order, _ = await orders.create(user_id=5, chat_id=5, cart_id="c1", quote=quote(catalog, CART),
                                   channel=Channel.CONSULTATION, phone="+8613800138000")
    url = await links.link_for_order(order)

    assert await links.link_for_order(order) == url
    link = await links.get(token_of(url))
    assert link.for_order and link.order_id == order.id and link.user_id == 5
    clock.advance(minutes=31)
    assert await links.link_for_order(order) != url


async def test_F12_link_for_order_of_an_enterprise_order_verifies_its_security_phone(links, orders, catalog):
    order, _ = await orders.create(user_id=5, chat_id=5, cart_id="c2", quote=quote(catalog, CART),
                                   channel=Channel.CONSULTATION, phone="+8613800138000")
    order.for_enterprise, order.enterprise_id = True, "ent_1234abcd"  # an enterprise's own order (F7–F9)
    link = await links.get(token_of(await links.link_for_order(order)))
    assert link.enterprise_id == "ent_1234abcd"


# --- the Mini App's initData ------------------------------------------------------------------------------

BOT_TOKEN = "777000111:TEST"
NOW = datetime(2026, 1, 5, 2, 0, tzinfo=UTC)


def init_data(*, user_id: int = 42, auth_date: datetime = NOW, token: str = BOT_TOKEN, **extra: str) -> str:
    fields = {"auth_date": str(int(auth_date.timestamp())), "query_id": "AAHdF6IQAAAAAN0XohDhrOrc",
              "user": f'{{"id":{user_id},"first_name":"A","language_code":"zh-hans"}}', **extra}
    return urlencode({**fields, "hash": sign_init_data(fields, token)})


def test_F12_miniapp_init_data_signed_for_this_bot_and_recent_is_accepted():
    user = validate_init_data(init_data(), BOT_TOKEN, now=NOW + timedelta(minutes=5), max_age_seconds=3600)
    assert user.id == 42 and user.language_code == "zh-hans"


@pytest.mark.parametrize("data, reason", [
    (init_data(auth_date=NOW - timedelta(hours=2)), "too_old"),
    (init_data(token="999:ANOTHER-BOT"), "bad_hash"),
    (init_data().replace("query_id=AAH", "query_id=BBH"), "bad_hash"),
    (init_data() + "&user=%7B%22id%22%3A1%7D", "bad_hash"),  # a second user field: not what was signed
    ("", "malformed"),
    ("garbage", "bad_hash"),
    ("x" * 9000, "malformed"),
    (init_data(auth_date=NOW + timedelta(hours=1)), "from_future"),
])
def test_F12_miniapp_init_data_too_old_forged_or_for_another_bot_is_refused(data, reason):
    with pytest.raises(InitDataRejected) as refusal:
        validate_init_data(data, BOT_TOKEN, now=NOW, max_age_seconds=3600)
    assert refusal.value.reason == reason


def test_F12_miniapp_signature_is_aiograms_check(monkeypatch):
    """The signature is aiogram's check_webapp_signature; only the age is ours."""
    calls = []

    def spy(token: str, data: str) -> bool:
        calls.append(token)
        return False

    monkeypatch.setattr("bot.web.miniapp.check_webapp_signature", spy)
    with pytest.raises(InitDataRejected) as refusal:
        validate_init_data(init_data(), BOT_TOKEN, now=NOW, max_age_seconds=3600)
    assert refusal.value.reason == "bad_hash" and calls == [BOT_TOKEN]
    signed_without_user = {"auth_date": str(int(NOW.timestamp())), "query_id": "AAH"}
    data = urlencode({**signed_without_user, "hash": sign_init_data(signed_without_user, BOT_TOKEN)})
    monkeypatch.undo()
    with pytest.raises(InitDataRejected) as refusal:
        validate_init_data(data, BOT_TOKEN, now=NOW, max_age_seconds=3600)
    assert refusal.value.reason == "malformed"
