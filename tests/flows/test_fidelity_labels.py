"""What was bought, named whole: the invoice title and the paid message include the add-on
pack and read the years as years ("2年", "2 yr"), never "× 2"; 首页 shows a bought 合同加量包
among the enterprise's services, not 增值服务：暂无."""
import re

from tests.flows.steps import ENTERPRISE_NAME, to_pack

ADMIN = "+8613800138000"


async def buy_with_pack(h, buyer) -> None:
    await to_pack(buyer, years=2)
    await buyer.tap("合同加量包 1千份 · +¥4,000.00")
    await buyer.tap("立即购买")
    await buyer.send(ENTERPRISE_NAME)
    await buyer.share_contact()
    await buyer.send(h.sms.last_code(buyer.phone))
    await buyer.tap("提交订单")


async def test_the_invoice_and_the_paid_message_name_the_pack_and_the_years(esign_harness):
    h = esign_harness
    buyer = h.user()
    await buy_with_pack(h, buyer)

    invoice = buyer.last_invoice()
    assert invoice["title"] == "腾讯电子签 高级版 2年 + 合同加量包 1千份"
    assert "×" not in invoice["title"] + invoice["description"]
    screen = await buyer.pay()
    assert "高级版 2年 + 合同加量包 1千份，¥13,600.00" in screen.text and "×" not in screen.text
    await buyer.tap("我的订单")
    assert buyer.screen.buttons[0] == "高级版 2年 + 合同加量包 1千份 · ¥13,600.00 · 已支付待绑定"


async def test_home_shows_the_pack_bought_with_the_edition(esign_harness):
    h = esign_harness
    await h.enterprise(ENTERPRISE_NAME, members={ADMIN: "super_admin"})
    admin = h.user(phone=ADMIN)
    await buy_with_pack(h, admin)  # delivered at once: the admin's verified enterprise
    screen = await admin.pay()
    assert "支付成功，已发货" in screen.text and "合同加量包 1千份" in screen.text

    screen = await admin.send("/start")

    assert "增值服务：合同加量包 已购 1,000 份" in screen.text and "增值服务：暂无" not in screen.text
    assert "合同余量：2,200 份" in screen.text


async def test_home_shows_the_pack_once_the_order_is_bound(esign_harness):
    h = esign_harness
    buyer = h.user(phone=ADMIN)
    await buy_with_pack(h, buyer)
    await buyer.pay()
    await h.enterprise(ENTERPRISE_NAME, members={ADMIN: "super_admin"})  # verified afterwards
    await buyer.tap("立即绑定")
    await buyer.tap(ENTERPRISE_NAME)
    screen = await buyer.tap("确认绑定")
    assert "绑定成功" in screen.text
    screen = await buyer.send("/start")
    assert "增值服务：合同加量包 已购 1,000 份" in screen.text


async def test_english_the_invoice_names_the_pack_within_telegrams_limit(esign_harness):
    h = esign_harness
    buyer = h.user(lang="en")
    await buyer.send("/start")
    await buyer.tap("Buy a plan")
    await buyer.tap("Buy now")
    await buyer.tap(re.compile("^Advanced"))
    await buyer.tap(re.compile("^2 yr"))
    await buyer.tap("Contract add-on pack, 10,000 · +¥30,000.00")
    await buyer.tap("Buy now")
    await buyer.send("Example Co.")
    await buyer.share_contact()
    await buyer.send(h.sms.last_code(buyer.phone))
    await buyer.tap("Submit order")
    invoice = buyer.last_invoice()
    assert invoice["title"] == "Advanced, 2 yr + 10k pack" and len(invoice["title"]) <= 32
    screen = await buyer.pay()
    assert "Advanced, 2 yr + Contract add-on pack, 10,000" in screen.text


async def test_english_home_shows_the_pack_bought_with_the_edition(esign_harness):
    h = esign_harness
    await h.enterprise("Example Co.", members={ADMIN: "super_admin"})
    admin = h.user(lang="en", phone=ADMIN)
    await admin.send("/start")
    await admin.tap("Buy a plan")
    await admin.tap("Buy now")
    await admin.tap(re.compile("^Advanced"))
    await admin.tap(re.compile("^1 yr"))
    await admin.tap("Contract add-on pack, 1,000 · +¥4,000.00")
    await admin.tap("Buy now")
    await admin.send("Example Co.")
    await admin.share_contact()
    await admin.send(h.sms.last_code(ADMIN))
    await admin.tap("Submit order")
    await admin.pay()

    screen = await admin.send("/start")

    assert "Value-added services: contract add-on packs, 1,000 contracts bought" in screen.text
