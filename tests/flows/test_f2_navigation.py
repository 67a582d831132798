"""F2 back buttons: going back a step keeps what was chosen before it; 重新选择版本 and a new
立即购买 start a fresh cart."""
from tests.flows.steps import ADVANCED, NO_PACK, to_confirmation, to_enterprise_name, to_pack, to_years, years_button


async def test_F2_back_from_years_returns_to_the_editions(esign_harness):
    buyer = esign_harness.user()
    await to_years(buyer)
    screen = await buyer.tap("返回")
    assert "版本选购" in screen.text
    assert await esign_harness.state_of(buyer) == "Buy:edition"
    screen = await buyer.tap("返回")
    assert "📦 购买套餐" in screen.text


async def test_F2_back_from_the_pack_keeps_the_edition_and_asks_the_years_again(esign_harness):
    buyer = esign_harness.user()
    await to_pack(buyer, years=2)
    screen = await buyer.tap("返回")
    assert "请选择购买时长" in screen.text and "高级版" in screen.text
    screen = await buyer.tap(years_button(3))
    assert "高级版 3年" in screen.text


async def test_F2_back_from_the_enterprise_name_keeps_edition_and_years(esign_harness):
    buyer = esign_harness.user()
    await to_enterprise_name(buyer, years=3)
    screen = await buyer.tap("返回")
    assert "产品选购" in screen.text and "购买时长：3年" in screen.text
    screen = await buyer.tap("修改合同加量包")
    assert "高级版 3年\n是否加购合同加量包" in screen.text
    session = await esign_harness.session_of(buyer)
    assert session.cart.edition == "advanced" and session.cart.years == 3


async def test_F2_choose_another_edition_at_the_confirmation_starts_a_fresh_cart(esign_harness):
    buyer = esign_harness.user()
    await to_confirmation(esign_harness, buyer, years=3)
    old_cart = (await esign_harness.session_of(buyer)).cart_id

    screen = await buyer.tap("重新选择版本")
    assert "版本选购" in screen.text
    session = await esign_harness.session_of(buyer)
    assert session.cart.edition is None and session.cart_id != old_cart
    await buyer.tap(ADVANCED)
    await buyer.tap(years_button(1))
    await buyer.tap(NO_PACK)
    screen = await buyer.tap("立即购买")
    assert "合计：¥4,800.00" in screen.text  # phone and name were kept
    await buyer.tap("提交订单")
    [order] = await esign_harness.orders.list_for_user(buyer.id)
    assert order.years == 1
