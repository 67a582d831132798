"""F1, F2, F3, F4, F5: the whole 高级版 purchase in chat, through to delivery: bound after
payment by a buyer whose enterprise is verified later (R11–R13), delivered at once when its
super admin buys for a verified enterprise (R19)."""
from services.orders import OrderStatus

DEMO_PHONE = "+8613800138000"


async def test_whole_advanced_purchase_through_delivery(esign_harness):
    buyer = esign_harness.user(lang="zh", phone=DEMO_PHONE)

    screen = await buyer.send("/start")
    assert "欢迎使用腾讯电子签" in screen.text
    assert {"购买套餐", "我的订单", "联系客服"} <= set(screen.buttons)

    screen = await buyer.tap("购买套餐")
    assert "高级版：¥4,800.00/年，每年含 600 份合同" in screen.text
    assert "专业版：¥19,800.00/年" in screen.text

    screen = await buyer.tap("立即购买")
    assert "版本选购" in screen.text
    screen = await buyer.tap("高级版 · ¥4,800.00/年")
    assert screen.buttons[:3] == ["1年 · ¥4,800.00", "2年 · ¥9,600.00", "3年 · ¥14,400.00"]
    screen = await buyer.tap("2年 · ¥9,600.00")
    assert "合同加量包" in screen.text
    screen = await buyer.tap("合同加量包 1千份 · +¥4,000.00")
    assert "产品选购" in screen.text and "合计：¥13,600.00" in screen.text
    screen = await buyer.tap("立即购买")
    assert "企业名称" in screen.text

    screen = await buyer.send("深圳示例科技有限公司")
    assert "验证手机号" in screen.text
    assert "📱 分享我的手机号" in screen.keyboard

    screen = await buyer.share_contact()
    assert "+86*******8000" in screen.text
    code = esign_harness.sms.last_code(DEMO_PHONE)
    screen = await buyer.send(code)
    assert "订单确认" in screen.text
    assert "高级版 2年：¥9,600.00" in screen.text
    assert "合同加量包 1千份：¥4,000.00" in screen.text
    assert "合计：¥13,600.00" in screen.text
    assert "合同份数：2,200 份" in screen.text

    screen = await buyer.tap("提交订单")
    invoice = buyer.last_invoice()
    assert invoice["currency"] == "CNY"
    assert invoice["total_amount"] == 1_360_000
    [order] = await esign_harness.orders.list_for_user(buyer.id)
    assert order.status is OrderStatus.PENDING and invoice["payload"] == order.id

    screen = await buyer.pay()
    assert "支付成功" in screen.text
    assert "请及时认证并绑定企业使用" in screen.text  # R13
    order = await esign_harness.orders.get(order.id)
    assert order.status is OrderStatus.PAID

    # The enterprise is verified afterwards, the buyer its super admin: now it can be bound.
    ent = await esign_harness.enterprise("深圳示例科技有限公司", members={DEMO_PHONE: "super_admin"})
    screen = await buyer.tap("立即绑定")
    assert "深圳示例科技有限公司" in screen.buttons
    screen = await buyer.tap("深圳示例科技有限公司")
    assert "确认将订单" in screen.text
    screen = await buyer.tap("确认绑定")
    assert "绑定成功" in screen.text
    assert "合同余量：2,200 份" in screen.text

    delivered = await esign_harness.enterprises.get(ent.id)
    assert delivered.edition == "advanced"
    assert delivered.contracts_left == 2200
    assert delivered.expires_at.year == esign_harness.clock.now().year + 2
    order = await esign_harness.orders.get(order.id)
    assert order.status is OrderStatus.BOUND and order.enterprise_id == ent.id

    screen = await buyer.send("/start")
    assert "当前版本：高级版" in screen.text
    assert "合同余量：2,200 份" in screen.text


async def test_the_super_admin_of_a_verified_enterprise_gets_the_purchase_delivered_at_once(esign_harness):
    ent = await esign_harness.enterprise("深圳示例科技有限公司", members={DEMO_PHONE: "super_admin"})
    buyer = esign_harness.user(lang="zh", phone=DEMO_PHONE)
    await buyer.send("/start")
    await buyer.tap("购买套餐")
    await buyer.tap("立即购买")
    await buyer.tap("高级版 · ¥4,800.00/年")
    await buyer.tap("2年 · ¥9,600.00")
    await buyer.tap("不加购合同加量包")
    await buyer.tap("立即购买")
    await buyer.send("深圳示例科技有限公司")
    await buyer.share_contact()

    screen = await buyer.send(esign_harness.sms.last_code(DEMO_PHONE))  # R19: the name typed is that enterprise

    assert "购买企业：深圳示例科技有限公司（当前体验版" in screen.text
    assert "支付后将直接发货至「深圳示例科技有限公司」，无需绑定" in screen.text
    assert "合计：¥9,600.00" in screen.text
    await buyer.tap("提交订单")
    screen = await buyer.pay()

    assert "支付成功，已发货" in screen.text and "立即绑定" not in screen.buttons
    [order] = await esign_harness.orders.list_for_user(buyer.id)
    assert order.status is OrderStatus.BOUND and order.enterprise_id == ent.id
    delivered = await esign_harness.enterprises.get(ent.id)
    assert delivered.edition == "advanced" and delivered.contracts_left == 1200
    assert delivered.expires_at.year == esign_harness.clock.now().year + 2
