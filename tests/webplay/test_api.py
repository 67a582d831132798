"""The browser playground's JSON API (devkit/esign_devkit/webplay/server.py), through aiohttp's test client: the
page sees what the fake Telegram holds, and what the page does reaches the production dispatcher."""
from __future__ import annotations

import asyncio
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from esign_devkit.webplay.server import FIRST_BUYER_ID, WebPlayground

from bot.app import build_context
from bot.cli.admin import DEMO_ENTERPRISE, DEMO_PHONE
from bot.context import AppContext
from config.settings import Settings
from services.orders import OrderStatus
from services.sms import ConsoleSms
from tests.conftest import TEST_REDIS_URL
from tests.webplay.conftest import playground_settings

ROOT = Path(__file__).resolve().parents[2]
BUYER = FIRST_BUYER_ID
HAND_OFF = "staff_chat_id" in Settings.model_fields
DESK = "support" in AppContext.__dataclass_fields__  # the help desk that works the staff group


class Page:
    """What the page's script does, as plain HTTP calls."""

    def __init__(self, client, chat_id: int = BUYER) -> None:
        self.client = client
        self.chat_id = chat_id

    async def state(self) -> dict:
        response = await self.client.get("/api/state")
        assert response.status == 200
        return await response.json()

    async def chat(self) -> dict:
        return next(b for b in (await self.state())["buyers"] if b["id"] == self.chat_id)

    async def post(self, action: str, expect: int = 200, **body) -> dict:
        response = await self.client.post(f"/api/chats/{self.chat_id}/{action}", json=body)
        data = await response.json()
        assert response.status == expect, data
        return data

    async def send(self, text: str) -> dict:
        result = await self.post("send", text=text)
        assert result["error"] is None
        return result

    async def button(self, label: str | re.Pattern[str]) -> tuple[int, dict]:
        """The newest message's button with this label: (message id, button)."""
        for message in reversed((await self.chat())["messages"]):
            for row in message.get("buttons", []):
                for button in row:
                    text = button["text"]
                    if (label.search(text) if isinstance(label, re.Pattern) else text == label):
                        return message["id"], button
        raise AssertionError(f"no button {label!r}; the chat: {await self.chat()}")

    async def tap(self, label: str | re.Pattern[str]) -> dict:
        message_id, button = await self.button(label)
        result = await self.post("press", message_id=message_id, data=button["callback_data"])
        assert result["answered"], result
        return result

    async def last_text(self) -> str:
        bot_messages = [m for m in (await self.chat())["messages"] if m["from_bot"]]
        return bot_messages[-1].get("text") or bot_messages[-1].get("invoice", {}).get("description", "")


async def buy_until_invoice(page: Page, *, edition: str = "^高级版", years: str = "^1年") -> dict:
    await page.send("/start")
    await page.tap("购买套餐")
    await page.tap("立即购买")
    await page.tap(re.compile(edition))
    await page.tap(re.compile(years))
    await page.tap("不加购合同加量包")
    await page.tap("立即购买")
    await page.send(DEMO_ENTERPRISE)
    chat = await page.chat()
    assert chat["keyboard"]["rows"][0][0]["request_contact"] is True   # the 📱 button
    await page.post("contact")
    sms = (await page.state())["sms"]["items"][0]
    await page.send(sms["code"])
    await page.tap("提交订单")
    return next(m for m in reversed((await page.chat())["messages"]) if "invoice" in m)


async def test_F1_the_page_and_its_files_are_served(client):
    page = await client.get("/")
    assert page.status == 200
    html = await page.text()
    assert "/static/app.js" in html and "/static/style.css" in html and 'lang="zh-CN"' in html
    for name in ("app.js", "style.css"):
        assert (await client.get(f"/static/{name}")).status == 200


async def test_F1_the_state_shows_the_first_buyer_with_the_demo_phone_and_the_demo_enterprise(client):
    state = await Page(client).state()
    [buyer] = state["buyers"]
    assert buyer["id"] == BUYER and buyer["phone"] == DEMO_PHONE and buyer["messages"] == []
    assert buyer["phone_masked"] == "+86*******8000"
    [enterprise] = state["enterprises"]
    assert enterprise["name"] == DEMO_ENTERPRISE and enterprise["verified"] and enterprise["edition"] == "体验版"
    assert state["info"]["demo_phone"] == DEMO_PHONE and state["info"]["store"] == "test Redis"
    assert state["sms"] == {"backend": "console", "items": []}
    # The staff pane is there when the bot has a staff group (the hand-off), and says so otherwise.
    assert state["staff"]["configured"] is HAND_OFF
    assert state["staff"]["hand_off"] is HAND_OFF
    assert state["staff"]["desk"] is DESK


async def test_F2_F5_a_whole_advanced_purchase_through_the_page_api(client, playground):
    page = Page(client)
    await page.send("/start")
    home = await page.chat()
    [welcome] = home["messages"][1:]
    assert welcome["from_bot"] and "欢迎使用腾讯电子签" in welcome["text"]

    await page.tap("购买套餐")
    after = await page.chat()
    [edited] = after["messages"][1:]                       # edited in place: still one bot message
    assert edited["id"] == welcome["id"] and edited["edited"] and "购买套餐" in edited["text"]

    invoice = await buy_until_invoice(page)
    assert invoice["invoice"]["amount"] == "¥4,800.00" and invoice["invoice"]["paid"] is False
    sms = (await page.state())["sms"]["items"][0]
    assert sms["buyer"] == "张伟" and sms["to"] == "+86*******8000" and re.fullmatch(r"\d{6}", sms["code"])

    paid = await page.post("pay", message_id=invoice["id"])
    assert paid == {"ok": True, "error": None, "amount": "¥4,800.00", "version": paid["version"]}
    chat = await page.chat()
    assert next(m for m in chat["messages"] if m["id"] == invoice["id"])["invoice"]["paid"] is True
    assert any(m.get("payment", {}).get("amount") == "¥4,800.00" for m in chat["messages"])  # the receipt
    assert "支付成功" in await page.last_text()

    # The demo buyer is the demo enterprise's super admin: delivered at payment (R19).
    assert "已发货至企业「" + DEMO_ENTERPRISE in await page.last_text()
    await page.tap("🏠 首页")
    home_text = await page.last_text()
    assert "当前版本：高级版" in home_text and "合同余量：600 份" in home_text

    [order] = await playground.app.orders.list_for_user(BUYER)
    assert order.status is OrderStatus.BOUND
    [enterprise] = (await page.state())["enterprises"]
    assert enterprise["edition"] == "高级版" and enterprise["contracts_left"] == 600 and enterprise["expires"]


async def test_F4_pay_asks_the_bot_first_and_shows_its_refusal(client, playground, clock):
    page = Page(client)
    invoice = await buy_until_invoice(page)
    clock.advance(minutes=31)                               # the unpaid order expires (30 minutes)

    refused = await page.post("pay", message_id=invoice["id"])
    assert refused["ok"] is False and refused["error"] == "订单已过期，请重新下单。"
    chat = await page.chat()
    assert not any("payment" in m for m in chat["messages"])        # no payment was sent
    assert next(m for m in chat["messages"] if m["id"] == invoice["id"])["invoice"]["paid"] is False
    [order] = await playground.app.orders.list_for_user(BUYER)
    assert order.status is OrderStatus.EXPIRED


async def test_F4_a_paid_invoice_cannot_be_paid_again_from_the_page(client):
    page = Page(client)
    invoice = await buy_until_invoice(page)
    await page.post("pay", message_id=invoice["id"])
    again = await page.post("pay", expect=409, message_id=invoice["id"])
    assert again == {"ok": False, "error": "this invoice is paid already"}


async def test_R2_web_purchase_buttons_are_plain_links(client, playground):
    page = Page(client)
    await page.send("/start")
    await page.tap("购买套餐")
    await page.tap("立即购买")
    await page.tap(re.compile("^专业版"))
    message_id, button = await page.button("网页端购买")
    sent = playground.telegram.message(BUYER, message_id)["reply_markup"]["inline_keyboard"]
    [original] = [b for row in sent for b in row if b["text"] == "网页端购买"]
    assert button == {"text": "网页端购买", "url": original["url"]}        # the page opens it in a new tab
    assert button["url"].startswith(("http://", "https://"))


async def test_inline_buttons_of_every_kind_reach_the_page(client, playground):
    """Callbacks are pressed, links and Mini Apps (web_app) open in a new tab, copy_text copies;
    a kind the playground cannot press is shown disabled, never dropped."""
    from aiogram.types import CopyTextButton, InlineKeyboardButton, InlineKeyboardMarkup, LoginUrl, WebAppInfo

    button = InlineKeyboardButton
    markup = InlineKeyboardMarkup(inline_keyboard=[
        [button(text="cb", callback_data="x"), button(text="link", url="https://example.com/a")],
        [button(text="app", web_app=WebAppInfo(url="https://example.com/app")),
         button(text="copy", copy_text=CopyTextButton(text="o123")),
         button(text="login", login_url=LoginUrl(url="https://example.com/login"))],
    ])
    await playground.bot.send_message(BUYER, "every kind", reply_markup=markup)
    [message] = (await Page(client).chat())["messages"]
    assert message["buttons"] == [
        [{"text": "cb", "callback_data": "x"}, {"text": "link", "url": "https://example.com/a"}],
        [{"text": "app", "url": "https://example.com/app", "web_app": True}, {"text": "copy", "copy_text": "o123"},
         {"text": "login", "unsupported": "login_url"}],
    ]


async def test_F1_several_buyers_side_by_side_each_in_their_own_chat_and_language(client, playground):
    response = await client.post("/api/buyers", json={"lang": "en", "phone": "+8613912345678"})
    added = await response.json()
    assert response.status == 200 and added["name"] == "Alice" and added["id"] == BUYER + 1
    zh, en = Page(client), Page(client, added["id"])
    await zh.send("/start")
    await en.send("/start")
    await en.tap("Buy a plan")
    assert "欢迎使用腾讯电子签" in await zh.last_text()
    assert "Buy a plan" not in await zh.last_text() and "Advanced" in await en.last_text()
    state = await zh.state()
    assert [b["lang"] for b in state["buyers"]] == ["zh", "en"]
    assert len((await zh.chat())["messages"]) == 2 and len((await en.chat())["messages"]) == 2

    await en.tap("Buy now")
    await en.tap(re.compile("^Advanced"))
    await en.tap(re.compile("^1 yr"))
    await en.tap("No add-on pack")
    await en.tap("Buy now")
    await en.send("Example Co.")
    await en.post("contact")
    [sms] = (await en.state())["sms"]["items"]
    assert sms["buyer"] == "Alice" and sms["buyer_id"] == added["id"] and sms["to"] == "+86*******5678"


async def test_the_long_poll_waits_for_a_change_and_returns_it(client):
    page = Page(client)
    state = await page.state()
    waiting = asyncio.create_task(client.get(f"/api/state?since={state['version']}&boot={state['boot']}&wait=5"))
    await asyncio.sleep(0.3)
    assert not waiting.done()
    await page.send("/start")
    changed = await (await asyncio.wait_for(waiting, 2)).json()
    assert changed["version"] > state["version"] and changed["buyers"][0]["messages"]

    changed = await page.state()                            # after the update was handled
    quiet = await client.get(f"/api/state?since={changed['version']}&boot={changed['boot']}&wait=0.2")
    assert (await quiet.json())["version"] == changed["version"]
    # A page from before a restart (another boot) gets the new picture at once.
    other = await asyncio.wait_for(client.get(f"/api/state?since={changed['version']}&boot=stale&wait=5"), 1)
    assert (await other.json())["boot"] == changed["boot"]


async def test_bad_requests_get_a_clear_answer(client):
    page = Page(client)
    assert (await client.post(f"/api/chats/{BUYER}/send", data="text=hi")).status == 415
    assert (await client.post(f"/api/chats/{BUYER}/send", data="[1]",
                              headers={"Content-Type": "application/json"})).status == 400
    assert (await page.post("send", expect=400, text="  "))["error"] == "the message is empty"
    assert (await page.post("press", expect=400, message_id=1))["error"].startswith("data:")
    assert (await page.post("pay", expect=404, message_id=99))["error"] == "no invoice 99 in this chat"
    assert (await page.post("send", expect=403, user=BUYER + 5, text="hi"))["error"] == \
        "only the buyer can write in their own chat"
    assert (await page.post("media", expect=400, kind="sticker"))["error"] == "kind must be one of photo, document"
    assert (await Page(client, 424242).post("send", expect=404, text="hi"))["error"] == "no chat 424242"
    assert (await page.post("fly", expect=404))["error"] == "no action fly"
    response = await client.post("/api/buyers", json={"name": 7})
    assert response.status == 400 and (await response.json())["error"] == "name must be text"
    assert (await page.post("send", expect=400, text="hi", reply_to=77))["error"] == \
        "Bad Request: message to be replied not found"


async def test_a_stale_button_gets_the_bots_short_notice(client):
    page = Page(client)
    await page.send("/start")
    await page.tap("购买套餐")
    await page.tap("立即购买")
    message_id, button = await page.button(re.compile("^高级版"))
    await page.tap("🏠 首页")                                 # that message is the home screen now
    await page.send("/start")
    before = await page.chat()
    stale = await page.post("press", message_id=message_id, data=button["callback_data"])
    assert stale["answered"] is True and stale["notice"] == "此按钮已失效，请使用最新的消息。"
    assert (await page.chat())["messages"] == before["messages"]


async def test_a_buyer_can_send_a_photo_and_edit_their_own_message(client, playground):
    page = Page(client)
    await page.send("/start")
    await page.post("media", kind="photo", caption="营业执照")
    mine = [m for m in (await page.chat())["messages"] if not m["from_bot"]]
    assert mine[-1]["media"] == "photo" and mine[-1]["text"] == "营业执照"
    await page.send("你好")
    hello = [m for m in (await page.chat())["messages"] if not m["from_bot"]][-1]
    await page.post("edit", message_id=hello["id"], text="您好")
    edited = next(m for m in (await page.chat())["messages"] if m["id"] == hello["id"])
    assert edited["text"] == "您好" and edited["edited"] is True
    bot_message = next(m for m in (await page.chat())["messages"] if m["from_bot"])
    refused = await page.post("edit", expect=400, message_id=bot_message["id"], text="x")
    assert refused["error"] == "one can only edit one's own messages"


async def test_F11_the_staff_pane_shows_any_forum_group_and_an_agent_writes_in_a_topic(redis, clock):
    """Generic on the fake's chats: whatever the bot posts in its staff group (topics, a pinned
    card) shows in the pane, and an agent's message goes to the dispatcher in the topic."""
    from aiohttp.test_utils import TestClient, TestServer
    from esign_devkit.webplay.server import build_web_app

    staff = -1009990001
    app = build_context(playground_settings(), redis, clock=clock, sms=ConsoleSms(clock))
    world = WebPlayground(app, staff_chat_id=staff)
    try:
        topic = await world.bot.create_forum_topic(staff, "张伟 · 高级版")
        card = await world.bot.send_message(staff, "接待卡片 intake card", message_thread_id=topic.message_thread_id)
        await world.bot.pin_chat_message(staff, card.message_id)
        await world.bot.send_message(staff, "/queue: 1 waiting")                       # the General topic
        async with TestClient(TestServer(build_web_app(world))) as client:
            state = await Page(client).state()
            [agent] = state["agents"]
            assert state["staff"] == {"configured": True, "chat_id": staff, "hand_off": HAND_OFF, "desk": DESK}
            [group] = state["groups"]
            assert group["forum"] and group["staff"] and group["title"] == "腾讯电子签 · 客服群"
            [listed] = group["topics"]
            assert listed["name"] == "张伟 · 高级版" and listed["count"] == 1 and listed["last"] == "接待卡片 intake card"
            shown = next(m for m in group["messages"] if m["id"] == card.message_id)
            assert shown["thread"] == topic.message_thread_id and shown["pinned"] and shown["from_bot"]
            assert next(m for m in group["messages"] if m.get("text", "").startswith("/queue"))["thread"] is None

            group_page = Page(client, staff)
            await group_page.post("send", user=agent["id"], text="您好，我是客服小李", thread_id=topic.message_thread_id,
                                  reply_to=card.message_id)
            await group_page.post("media", user=agent["id"], kind="document", thread_id=topic.message_thread_id)
            assert (await group_page.post("send", expect=404, user=BUYER, text="hi"))["error"] == f"no agent {BUYER}"
            response = await client.post("/api/agents", json={"name": "客服小王"})
            assert (await response.json())["name"] == "客服小王"
        said, document = world.telegram.messages(staff, from_bot=False)
        assert said["from"]["first_name"] == "客服小李" and said["message_thread_id"] == topic.message_thread_id
        assert said["reply_to_message"]["message_id"] == card.message_id
        assert document["document"] and document["message_thread_id"] == topic.message_thread_id
    finally:
        await world.close()


async def test_F11_no_agents_without_a_staff_group(client):
    response = await client.post("/api/agents", json={})
    if HAND_OFF:
        assert response.status == 200
    else:
        assert response.status == 409
        assert (await response.json())["error"] == "the bot has no staff group: agents have nowhere to work"


async def test_a_second_run_on_the_same_redis_still_answers_start(redis):
    """Update ids are remembered in Redis for a day (repeated updates are dropped): a new run's
    ids must not repeat the last run's, or its /start would go unanswered."""
    for run in range(2):
        world = await WebPlayground.create(playground_settings(), redis)
        try:
            await world.send_text(BUYER, None, "/start")
            assert len(world.telegram.messages(BUYER, from_bot=True)) == 1, f"run {run + 1}"
        finally:
            await world.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_the_command_serves_the_page(redis):
    """`python -m bot playground --web --port P` as a user runs it."""
    port = _free_port()
    env = {**os.environ, "REDIS_URL": TEST_REDIS_URL, "PYTHONUNBUFFERED": "1"}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "playground", "--web", "--port", str(port), cwd=ROOT, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        lines = []
        while not any("Browser playground: http://" in line for line in lines):
            line = (await asyncio.wait_for(process.stdout.readline(), 30)).decode()
            assert line, "".join(lines)
            lines.append(line)
        assert f"Redis: {TEST_REDIS_URL}" in lines[0]
        assert f"Browser playground: http://127.0.0.1:{port}/" in lines[-1]
        from aiohttp import ClientSession
        async with ClientSession() as http, http.get(f"http://127.0.0.1:{port}/api/state") as response:
            state = await response.json()
        assert state["buyers"][0]["phone"] == DEMO_PHONE
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), 10)


def test_the_command_refuses_record_with_web(capsys):
    from esign_devkit.playground import main

    assert main(["--web", "--record", "x.yaml"]) == 2
    assert "--record works in the terminal playground" in capsys.readouterr().err


def test_the_playground_help_lists_web_and_port(capsys):
    from esign_devkit.playground import main

    with pytest.raises(SystemExit) as done:
        main(["--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert "--web" in out and "--port" in out
