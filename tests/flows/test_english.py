"""Labels (docs/rules.md): a user whose Telegram speaks English gets English texts and labels
throughout a purchase, the invoice and the SMS included."""
import re

from services.orders import OrderStatus

CJK = re.compile(r"[\u4e00-\u9fff]")
NAME = "Shenzhen Example Technology Co., Ltd."


def assert_english(screen):
    assert not CJK.search(" ".join([screen.text, *screen.buttons, *screen.keyboard])), screen


async def test_english_purchase_from_home_to_binding(esign_harness):
    buyer = esign_harness.user(lang="en", phone="+8613800138000")

    screen = await buyer.send("/start")
    assert "Welcome to Tencent E-Sign" in screen.text
    assert {"Buy a plan", "My orders", "Contact customer service"} <= set(screen.buttons)
    assert_english(screen)

    screen = await buyer.tap("Buy a plan")
    assert "Advanced: ¥4,800.00/year, 600 contracts a year" in screen.text
    assert "Buy now" in screen.buttons
    assert_english(screen)

    screen = await buyer.tap("Buy now")
    assert "Choose an edition" in screen.text
    assert screen.buttons[:3] == ["Advanced · ¥4,800.00/year", "Professional · ¥19,800.00/year",
                                  "Flagship · ¥59,800.00/year"]
    assert_english(screen)

    screen = await buyer.tap("Professional · ¥19,800.00/year")  # R2 in English
    assert "cannot be paid in chat" in screen.text
    assert {"Purchase consultation", "Buy on the web"} <= set(screen.buttons)
    assert_english(screen)
    screen = await buyer.tap("Choose another edition")

    screen = await buyer.tap("Advanced · ¥4,800.00/year")
    assert "Choose the duration" in screen.text
    assert screen.buttons[:3] == ["1 yr · ¥4,800.00", "2 yr · ¥9,600.00", "3 yr · ¥14,400.00"]
    assert_english(screen)

    screen = await buyer.tap("2 yr · ¥9,600.00")
    assert "Add a contract add-on pack?" in screen.text
    assert "No add-on pack" in screen.buttons
    assert_english(screen)

    screen = await buyer.tap("Contract add-on pack, 1,000 · +¥4,000.00")
    assert "Your selection" in screen.text and "Total: ¥13,600.00" in screen.text
    assert_english(screen)
    screen = await buyer.tap("Buy now")
    assert "enter your enterprise name" in screen.text

    screen = await buyer.send("x")
    assert "The enterprise name must be 2–50 characters" in screen.text

    screen = await buyer.send(NAME)
    assert "Verify phone" in screen.text
    assert "📱 Share my phone number" in screen.keyboard
    assert_english(screen)

    screen = await buyer.send("12345")
    assert "That is not a valid phone number" in screen.text

    screen = await buyer.share_contact()
    assert "A code was sent to +86*******8000" in screen.text
    assert {"Resend code", "Change number"} <= set(screen.buttons)
    assert_english(screen)
    sms = esign_harness.sms.gateway.last_to("+8613800138000")
    assert sms.startswith("[Tencent E-Sign] Your verification code is")

    screen = await buyer.send("000")
    assert "Please type the 6-digit code." in screen.text

    screen = await buyer.send(esign_harness.sms.last_code(buyer.phone))
    assert "Phone +86*******8000 verified" in screen.text
    assert "Confirm your order" in screen.text
    assert "Advanced, 2 yr: ¥9,600.00" in screen.text
    assert "Contract add-on pack, 1,000: ¥4,000.00" in screen.text
    assert "Total: ¥13,600.00" in screen.text
    assert "Submit order" in screen.buttons
    assert_english(screen)

    await buyer.tap("Submit order")
    invoice = buyer.last_invoice()
    assert invoice["title"] == "Advanced, 2 yr + 1k pack"  # the pack too, in Telegram's 32 characters
    assert [p["label"] for p in invoice["prices"]] == ["Advanced, 2 yr", "Contract add-on pack, 1,000"]
    assert not CJK.search(invoice["title"] + invoice["description"])

    screen = await buyer.pay()
    assert "Payment received!" in screen.text
    assert "Verify your enterprise and bind the order promptly" in screen.text
    assert {"Bind now", "My orders"} <= set(screen.buttons)
    assert_english(screen)

    screen = await buyer.tap("My orders")
    assert "My orders" in screen.text
    assert "Advanced, 2 yr + Contract add-on pack, 1,000 · ¥13,600.00 · Paid, waiting to be bound" in screen.buttons
    screen = await buyer.tap("Advanced, 2 yr + Contract add-on pack, 1,000 · ¥13,600.00 · Paid, waiting to be bound")
    assert "Status: Paid, waiting to be bound" in screen.text
    assert "Bind now" in screen.buttons

    ent = await esign_harness.enterprise(NAME, members={"+8613800138000": "super_admin"})  # verified since
    screen = await buyer.tap("Bind now")
    assert "Choose the enterprise" in screen.text
    screen = await buyer.tap(NAME)
    assert f"to “{NAME}”?" in screen.text
    assert "Confirm binding" in screen.buttons
    screen = await buyer.tap("Confirm binding")
    assert "Bound!" in screen.text and "Contracts left: 2,200" in screen.text
    assert_english(screen)
    assert (await esign_harness.orders.list_for_user(buyer.id))[0].status is OrderStatus.BOUND
    assert (await esign_harness.enterprises.get(ent.id)).edition == "advanced"

    screen = await buyer.send("hello")
    assert screen.text.startswith("Please choose with the buttons below.")
    assert "Edition: Advanced" in screen.text


async def test_english_payment_refusals_and_refund_notice(esign_harness):
    buyer = esign_harness.user(lang="en")
    await buyer.send("/start")
    await buyer.tap("Buy a plan")
    await buyer.tap("Buy now")
    await buyer.tap("Advanced · ¥4,800.00/year")
    await buyer.tap("1 yr · ¥4,800.00")
    await buyer.tap("No add-on pack")
    await buyer.tap("Buy now")
    await buyer.send(NAME)
    await buyer.share_contact()
    await buyer.send(esign_harness.sms.last_code(buyer.phone))
    await buyer.tap("Submit order")
    esign_harness.clock.advance(minutes=31)

    answer = await buyer.pre_checkout()
    assert answer == {"ok": False, "error_message": "The order has expired. Please order again."}
    screen = await buyer.payment_arrives()
    assert "We received your payment of ¥4,800.00" in screen.text
    assert "(the order has expired)" in screen.text
    assert not CJK.search(screen.text)
