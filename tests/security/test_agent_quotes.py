"""An agent's quote parses its price explicitly and refuses nonsense; a price below
the floor (QUOTE_FLOOR_PERCENT of the list price, 80 by default) waits for a second agent's
approval; the quoting agent cannot approve it, and it is issued once (docs/security.md)."""
from __future__ import annotations

import asyncio
import re

import pytest

from bot.flows.support.quotes import parse_price
from services.catalog import Cart, load_catalog
from services.quotes import QuoteNeedsApproval, floor_fen, price_quote
from tests.flows.support_steps import claimed

APPROVE = re.compile(r"^✅ 批准")


@pytest.mark.parametrize(("typed", "fen"), [
    ("80000", 8_000_000), ("¥80,000", 8_000_000), ("￥80,000.5", 8_000_050), ("80000元", 8_000_000),
    ("８００００", 8_000_000), ("0.01", 1), ("0", 0), ("1,234,567.89", 123_456_789),
])
def test_prices_written_plainly_parse(typed, fen):
    assert parse_price(typed) == fen


@pytest.mark.parametrize("typed", [
    "1e5", "-5", "+5", "80000.555", "8,0000", "80,00", "NaN", "Infinity", "0x10", "", "¥", "80 000", "1_000",
    "٣٠٠٠", "00080000", ".5", "5.", "12345678901",
])
def test_nonsense_is_refused(typed):
    assert parse_price(typed) is None


def test_the_floor_is_a_service_rule():
    catalog = load_catalog()
    cart = Cart(edition="advanced", years=1, pack=None, pack_chosen=True)
    from datetime import UTC, datetime

    now = datetime(2026, 1, 5, tzinfo=UTC)
    assert floor_fen(480_000, 80) == 384_000
    assert price_quote(catalog, cart, enterprise=None, phone=None, price_fen=384_000, now=now,
                       floor_percent=80).quote.total_fen == 384_000
    with pytest.raises(QuoteNeedsApproval):
        price_quote(catalog, cart, enterprise=None, phone=None, price_fen=383_999, now=now, floor_percent=80)
    assert price_quote(catalog, cart, enterprise=None, phone=None, price_fen=1, now=now, floor_percent=80,
                       approved=True).quote.total_fen == 1
    assert price_quote(catalog, cart, enterprise=None, phone=None, price_fen=1, now=now,
                       floor_percent=0).quote.total_fen == 1


async def test_zero_is_a_price_refused_not_no_pack(esign_harness):
    buyer = esign_harness.user()
    agent = await claimed(esign_harness, buyer)
    screen = await agent.command("/quote advanced 1 0", topic=buyer)
    assert "议价 ¥0.00 无效" in screen.text
    for nonsense in ("1e5", "-1", "80000.555", "¥-5", "NaN元"):
        screen = await agent.command(f"/quote advanced 1 {nonsense}", topic=buyer)
        assert f"无法识别价格「{nonsense}」" in screen.text
    assert await esign_harness.orders_of(buyer) == []


async def test_a_price_at_the_floor_goes_out_below_it_waits_for_a_second_agent(esign_harness):
    buyer = esign_harness.user()
    li = await claimed(esign_harness, buyer)
    screen = await li.command("/quote advanced 1 3840", topic=buyer)  # 80% of ¥4,800: the floor itself
    assert "议价 ¥3,840.00" in screen.text
    assert len(await esign_harness.orders_of(buyer)) == 1

    screen = await li.command("/quote advanced 1 0.01", topic=buyer)
    assert "申请低价报价" in screen.text and "底价 ¥3,840.00" in screen.text
    assert len(await esign_harness.orders_of(buyer)) == 1  # nothing issued yet

    answer = await li.tap(APPROVE, topic=buyer)  # not by the one who asked
    assert answer and "不能批准自己的报价" in answer["text"]
    assert len(await esign_harness.orders_of(buyer)) == 1

    wang = esign_harness.agent(name="Wang", alias="客服小王")
    await wang.tap(APPROVE, topic=buyer)
    orders = await esign_harness.orders_of(buyer)
    approved = [o for o in orders if o.total_fen == 1]
    assert len(orders) == 2 and len(approved) == 1
    assert "由 客服小王（Wang） 批准" in wang.last(buyer).text
    record = await esign_harness.app.support.quote(approved[0].id)
    assert record is not None and record.agent_id == li.id and record.approved_by == wang.id
    assert not any(APPROVE.match(b) for b in wang.last(buyer).buttons)  # the request card became the result


async def test_two_approvals_at_once_issue_one_order(esign_harness):
    buyer = esign_harness.user()
    li = await claimed(esign_harness, buyer)
    await li.command("/quote advanced 1 100", topic=buyer)
    wang, zhao = esign_harness.agent(name="Wang"), esign_harness.agent(name="Zhao")
    await asyncio.gather(wang.tap(APPROVE, topic=buyer), zhao.tap(APPROVE, topic=buyer))
    assert len(await esign_harness.orders_of(buyer)) == 1


async def test_a_withdrawn_request_sends_nothing(esign_harness):
    buyer = esign_harness.user()
    li = await claimed(esign_harness, buyer)
    await li.command("/quote advanced 1 100", topic=buyer)
    await li.tap("✖ 撤回", topic=buyer)
    assert "已由" in li.last(buyer).text and "撤回" in li.last(buyer).text
    wang = esign_harness.agent(name="Wang")
    with pytest.raises(Exception, match="no button"):
        await wang.tap(APPROVE, topic=buyer)
    assert await esign_harness.orders_of(buyer) == []
