"""A testing API that reads like the conversation it checks (see docs/testing.md).

    buyer = bot_harness.user(lang="zh")
    await buyer.send("/start")
    await buyer.tap("购买套餐")
    await buyer.share_contact()
    await buyer.send(bot_harness.sms.last_code(buyer.phone))
    await buyer.pay()

It drives the production dispatcher (bot.app.build_dispatcher) on a real Redis, through the
fake Telegram of esign_devkit.testing.fake_telegram. A failing step says what was on the screen.
"""
from __future__ import annotations

import asyncio
import itertools
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from aiogram import Bot, Dispatcher
from aiogram.fsm.storage.base import StorageKey
from aiogram.types import Update
from redis.asyncio import Redis

from bot.app import build_context, build_dispatcher
from bot.context import AppContext
from bot.state.session import Session
from config.settings import Settings
from esign_devkit.testing.fake_telegram import FakeTelegram, FakeUser
from services.catalog import Catalog
from services.clock import FixedClock
from services.enterprises import Enterprise, Role
from services.orders import Order, OrderStatus
from services.payment_gateway import PaymentGateway
from services.phones import normalize_phone
from services.sms import ConsoleSms

Label = str | re.Pattern[str]


class StepFailed(AssertionError):
    """A scripted step could not be done; the message shows the screen that was there."""


@dataclass
class Screen:
    """What the user sees last: the bot's latest message, its buttons, and the reply keyboard."""

    text: str = ""
    buttons: list[str] = field(default_factory=list)  # inline buttons, row by row
    keyboard: list[str] = field(default_factory=list)  # reply keyboard buttons
    message_id: int | None = None
    invoice: dict[str, Any] | None = None

    def __str__(self) -> str:
        lines = [self.text or "(no text)"]
        if self.invoice:
            lines.append(f"[invoice {self.invoice['title']!r} {self.invoice['total_amount']} {self.invoice['currency']}]")
        lines += [f"  [{b}]" for b in self.buttons]
        lines += [f"  <{b}>" for b in self.keyboard]
        return "\n".join(lines)

    def has_button(self, label: Label) -> bool:
        return any(_matches(label, b) for b in self.buttons + self.keyboard)


def _matches(label: Label, text: str) -> bool:
    return label.search(text) is not None if isinstance(label, re.Pattern) else text == label


class SmsOutbox:
    """The SMS the console backend 'sent', by phone in any common form."""

    def __init__(self, gateway: ConsoleSms) -> None:
        self.gateway = gateway

    def last_code(self, phone: str) -> str:
        code = self.gateway.last_code(normalize_phone(phone))
        if code is None:
            raise StepFailed(f"no SMS code was sent to {phone}")
        return code

    def count(self, phone: str) -> int:
        e164 = normalize_phone(phone)
        return sum(1 for sms in self.gateway.outbox if sms.phone == e164)


class ChatUser:
    """One buyer in a private chat with the bot."""

    def __init__(self, harness: BotHarness, fake: FakeUser) -> None:
        self.harness = harness
        self.fake = fake

    @property
    def id(self) -> int:
        return self.fake.id

    @property
    def phone(self) -> str:
        assert self.fake.phone
        return self.fake.phone

    @property
    def telegram(self) -> FakeTelegram:
        return self.harness.telegram

    @property
    def screen(self) -> Screen:
        return screen_of(self.telegram, self.id)

    @property
    def latest(self) -> Screen:
        """The bot message sent or edited last (an edit of an older message above an invoice)."""
        snapshot = next((m for m in reversed(self.telegram.bot_log) if m["chat"]["id"] == self.id), None)
        return screen_of(self.telegram, self.id, snapshot["message_id"] if snapshot else None)

    def bot_messages(self) -> list[str]:
        return [m.get("text") or "" for m in self.telegram.messages(self.id, from_bot=True)]

    async def send(self, text: str) -> Screen:
        await self.harness.feed(self.telegram.message_update(self.fake, text))
        return self.screen

    async def send_photo(self, caption: str | None = None) -> Screen:
        """A photo (optionally with a caption) where the bot may expect text."""
        await self.harness.feed(self.telegram.message_update(self.fake, caption, photo=f"photo-{self.id}"))
        return self.screen

    async def send_sticker(self) -> Screen:
        """A sticker: a message with no text at all."""
        telegram = self.telegram
        sticker = {"file_id": f"sticker-{self.id}", "file_unique_id": f"u-sticker-{self.id}", "type": "regular",
                   "width": 512, "height": 512, "is_animated": False, "is_video": False}
        update = telegram._update(message=telegram._user_message(self.fake, None, {"sticker": sticker}, None, None))
        await self.harness.feed(update)
        return self.screen

    async def share_contact(self, phone: str | None = None, *, own: bool = True) -> Screen:
        await self.harness.feed(self.telegram.contact_update(self.fake, phone or self.phone, own=own))
        return self.screen

    async def tap(self, label: Label) -> Screen:
        """Press an inline button (newest message first) or a reply-keyboard button."""
        screen = self.screen
        keyboard = self.telegram.reply_keyboard(self.id) or {}
        for row in keyboard.get("keyboard", []):
            for button in row:
                if _matches(label, button["text"]):
                    if button.get("request_contact"):
                        return await self.share_contact()
                    return await self.send(button["text"])
        try:
            update = self.telegram.click(self.fake, label)
        except LookupError:
            raise StepFailed(f"no button {label!r} on the screen:\n{screen}") from None
        await self.harness.feed(update)
        return self.screen

    async def tap_stale(self, message_id: int, callback_data: str) -> dict[str, Any] | None:
        """Press a button that may no longer be valid; returns the bot's callback answer."""
        update = self.telegram.callback_update(self.fake, message_id, callback_data)
        await self.harness.feed(update)
        return self.telegram.callback_answer(update.callback_query.id)

    def last_invoice(self) -> dict[str, Any]:
        invoices = self.telegram.invoices(self.id)
        if not invoices:
            raise StepFailed(f"no invoice in the chat; the screen was:\n{self.screen}")
        return invoices[-1]

    async def pre_checkout(self, invoice: dict[str, Any] | None = None, **forged: Any) -> dict[str, Any] | None:
        """Press Pay: Telegram asks the bot first. Returns its answer ({"ok": ...})."""
        invoice = invoice or self.last_invoice()
        update = self.telegram.pre_checkout_update(self.fake, invoice["message_id"], **forged)
        await self.harness.feed(update)
        return self.telegram.pre_checkout_answer(update.pre_checkout_query.id)

    async def pay(self, invoice: dict[str, Any] | None = None, *, charge_id: str | None = None) -> Screen:
        """Pay an invoice as Telegram does: pre-checkout, and the payment only if it was ok."""
        invoice = invoice or self.last_invoice()
        answer = await self.pre_checkout(invoice)
        if not answer or not answer.get("ok"):
            raise StepFailed(f"the bot refused the payment: {answer}; the screen was:\n{self.screen}")
        await self.payment_arrives(invoice, charge_id=charge_id)
        return self.screen

    async def payment_arrives(self, invoice: dict[str, Any] | None = None, *, charge_id: str | None = None) -> Screen:
        """Telegram's successful_payment message alone (for replays and late payments)."""
        invoice = invoice or self.last_invoice()
        update = self.telegram.successful_payment_update(self.fake, invoice["message_id"], charge_id=charge_id)
        await self.harness.feed(update)
        return self.screen

    async def send_code(self, phone: str | None = None) -> Screen:
        """Type the last SMS code sent to `phone` (default: this user's own phone)."""
        return await self.send(self.harness.sms.last_code(phone or self.phone))

    # --- assertions: a failure says what was expected and shows the screen found ---------------

    def expect(self, pattern: str | re.Pattern[str]) -> Screen:
        """The screen's text must match the regex (searched; ^ and $ anchor single lines)."""
        regex = pattern if isinstance(pattern, re.Pattern) else re.compile(pattern, re.MULTILINE)
        screen = self.screen
        if regex.search(screen.text) is None:
            raise StepFailed(expected_vs_screen(f"text matching /{regex.pattern}/", self.telegram, self.id))
        return screen

    def expect_buttons(self, *labels: Label) -> Screen:
        """Every label (exact text, or a compiled regex) must be a button on the screen."""
        screen = self.screen
        missing = [label for label in labels if not screen.has_button(label)]
        if missing:
            wanted = ", ".join(describe_label(label) for label in missing)
            raise StepFailed(expected_vs_screen(f"button {wanted}", self.telegram, self.id))
        return screen

    async def double_tap(self, label: Label) -> list[dict[str, Any] | None]:
        """Press an inline button twice at once, as an impatient finger does: both presses carry
        the same message and data. Returns the bot's two callback answers ({} is a silent one)."""
        try:
            message_id, button = self.telegram.find_button(self.id, label)
        except LookupError:
            raise StepFailed(f"no button {label!r} on the screen:\n{self.screen}") from None
        presses = [self.telegram.callback_update(self.fake, message_id, button["callback_data"]) for _ in range(2)]
        await asyncio.gather(*(self.harness.feed(update) for update in presses))
        return [self.telegram.callback_answer(update.callback_query.id) for update in presses]

    # --- customer service (F11): media, replies and edits ------------------------------------

    async def send_media(self, kind: str, caption: str | None = None, *, reply_to: int | None = None) -> Screen:
        """A photo, document, voice, video or sticker (with a caption where the kind takes one)."""
        await self.harness.feed(self.telegram.media_update(self.fake, kind, caption, reply_to_message_id=reply_to))
        return self.screen

    async def reply(self, message_id: int, text: str) -> Screen:
        """A text replying to one of the chat's messages (an agent's, say)."""
        await self.harness.feed(self.telegram.message_update(self.fake, text, reply_to_message_id=message_id))
        return self.screen

    async def edit(self, message_id: int, text: str) -> Screen:
        """Edit one of one's own messages (its text, or its caption)."""
        await self.harness.feed(self.telegram.edited_message_update(self.fake, message_id, text))
        return self.screen

    def last_own_message(self) -> dict[str, Any]:
        """The last message this user sent in their chat with the bot."""
        mine = self.telegram.messages(self.id, from_bot=False)
        if not mine:
            raise StepFailed(f"{self.fake.first_name} has sent nothing")
        return mine[-1]


def describe_label(label: Label) -> str:
    return f"/{label.pattern}/" if isinstance(label, re.Pattern) else repr(label)


def screen_of(telegram: FakeTelegram, chat_id: int, message_id: int | None = None) -> Screen:
    """A chat's screen: the bot's last message (or the given one), its buttons, the reply keyboard."""
    message = telegram.last_message(chat_id, from_bot=True) if message_id is None else telegram.message(chat_id, message_id)
    if message is None:
        return Screen()
    markup = message.get("reply_markup") or {}
    keyboard = telegram.reply_keyboard(chat_id) or {}
    invoice = next((i for i in telegram.invoices(chat_id) if i["message_id"] == message["message_id"]), None)
    return Screen(
        text=message.get("text") or message.get("caption") or (invoice or {}).get("description", ""),
        buttons=[b["text"] for row in markup.get("inline_keyboard", []) for b in row],
        keyboard=[b["text"] for row in keyboard.get("keyboard", []) for b in row],
        message_id=message["message_id"],
        invoice=invoice,
    )


def expected_vs_screen(expected: str, telegram: FakeTelegram, chat_id: int, earlier: int = 2) -> str:
    """A failure message: what was expected, the screen found, and the bot's other replies to the
    user's last message (up to `earlier` of them) just above it."""
    indent = lambda text: "\n".join(("    " + line).rstrip() for line in text.splitlines())  # noqa: E731
    lines = [f"expected {expected}", "found on the screen:", indent(str(screen_of(telegram, chat_id)))]
    replies = list(itertools.takewhile(lambda m: m["from"]["id"] == telegram.bot_id,
                                       reversed(telegram.messages(chat_id))))
    before = list(reversed(replies[1:1 + earlier]))
    if before:
        lines.append("(the bot's messages just above it:)")
        lines += [indent(m.get("text") or m.get("caption") or "(no text)") for m in before]
    return "\n".join(lines)


class BotHarness:
    """The production dispatcher on a test Redis, a fake Telegram, a fixed clock and the console SMS."""

    _user_ids = itertools.count(5_000_001)
    _agent_ids = itertools.count(9_000_001)

    def __init__(
        self,
        redis: Redis,
        *,
        clock: FixedClock | None = None,
        settings: Settings | None = None,
        catalog: Catalog | None = None,
        staff_group: bool = True,
        gateway: PaymentGateway | None = None,
    ) -> None:
        self.redis = redis
        self.catalog = catalog  # None: the catalog file named by the settings
        self.gateway = gateway  # None: the one WEB_GATEWAY names
        self.clock = clock or FixedClock()
        self.settings = settings or Settings(_env_file=None, bot_token=None, code_secret="test-secret")
        self.telegram = FakeTelegram()
        # Customer service (F11): a staff forum group the agents work in, unless told otherwise
        # (staff_group=False: no STAFF_CHAT_ID, 联系客服 is the static screen).
        if staff_group and self.settings.staff_chat_id is None:
            self.settings = self.settings.model_copy(update={"staff_chat_id": STAFF_CHAT_ID})
        if staff_group and self.settings.staff_chat_id is not None:
            self.telegram.add_chat(self.settings.staff_chat_id, title="客服工作台", is_forum=True)
        self.bot: Bot = self.telegram.make_bot()
        self.sms = SmsOutbox(ConsoleSms(self.clock))
        self.fed: list[Update] = []  # every update fed to the dispatcher, in order
        self.app: AppContext = self._build_context()
        self.dp: Dispatcher = build_dispatcher(self.app, self.bot)

    def _build_context(self) -> AppContext:
        return build_context(self.settings, self.redis, clock=self.clock, sms=self.sms.gateway, catalog=self.catalog,
                             gateway=self.gateway)

    def restart(self) -> None:
        """A new process: a fresh dispatcher and services on the same Redis and Telegram."""
        self.app = self._build_context()
        self.dp = build_dispatcher(self.app, self.bot)

    def _storage_key(self, user: ChatUser) -> StorageKey:
        return StorageKey(bot_id=self.bot.id, chat_id=user.id, user_id=user.id)

    async def state_of(self, user: ChatUser) -> str | None:
        """The user's stored step ("Buy:years", ...; None is 首页), as the next update will see it."""
        return await self.app.conversations.get_state(self._storage_key(user))

    async def session_of(self, user: ChatUser) -> Session:
        """The user's stored conversation data (cart, phone, order on screen)."""
        return Session.from_data(await self.dp.storage.get_data(self._storage_key(user)))

    def user(self, lang: str = "zh", *, phone: str | None = None, name: str | None = None) -> ChatUser:
        uid = next(self._user_ids)
        fake = FakeUser(
            id=uid,
            first_name=name or f"Buyer{uid % 1000}",
            language_code="en" if lang == "en" else "zh-hans",
            phone=phone or f"+86139{uid % 100_000_000:08d}",
        )
        self.telegram.register_user(fake)
        return ChatUser(self, fake)

    async def feed(self, update: Update) -> Any:
        self.fed.append(update)
        return await self.dp.feed_update(self.bot, update)

    def unanswered_queries(self) -> list[str]:
        """Ids of the callback and pre-checkout queries fed so far that the bot never answered."""
        missing = []
        for update in self.fed:
            if update.callback_query and update.callback_query.id not in self.telegram.callback_answers:
                missing.append(update.callback_query.id)
            query = update.pre_checkout_query
            if query and query.id not in self.telegram.pre_checkout_answers:
                missing.append(query.id)
        return missing

    @property
    def orders(self):
        return self.app.orders

    @property
    def enterprises(self):
        return self.app.enterprises

    async def enterprise(self, name: str, *, verified: bool = True, members: dict[str, str] | None = None) -> Enterprise:
        """Seed an enterprise with members given as {phone: role}."""
        ent = await self.app.enterprises.add(name, verified=verified)
        for phone, role in (members or {}).items():
            ent = await self.app.enterprises.add_member(ent.id, normalize_phone(phone), Role(role))
        return ent

    async def close(self) -> None:
        await self.bot.session.close()

    # --- time-driven work: one scheduler tick at the harness clock -------------------

    async def run_jobs(self):
        """Run one tick of the background task (bot/runtime/jobs.py) at the harness clock: editions and
        trials past their end, unpaid orders, reminders (sent through the fake Telegram).
        Returns the scheduler's TickReport. Like the production task, it runs once per tick
        (SCHEDULER_INTERVAL_SECONDS of the clock): call it again after `advance(...)`."""
        from bot.runtime.jobs import build_scheduler

        return await build_scheduler(self.app, self.bot, self.dp["desk"]).tick()

    async def enterprise_on(self, name: str, edition: str, *, expires_in_days: float | None = 365,
                            contracts_left: int | None = None, verified: bool = True,
                            members: dict[str, str] | None = None) -> Enterprise:
        """Seed an enterprise on an edition ("experience", "advanced", ...) that expires in
        `expires_in_days` (from the harness clock)."""
        from datetime import timedelta

        ent = await self.enterprise(name, verified=verified, members=members)
        now = self.clock.now()

        def mutate(e: Enterprise) -> None:
            e.edition = edition
            e.expires_at = now + timedelta(days=expires_in_days) if edition != "experience" and expires_in_days else None
            if contracts_left is not None:
                e.contracts_left = contracts_left

        return await self.app.enterprises.update(ent.id, mutate)

    # --- the clock and the order book ----------------------------------------------------------

    def advance(self, *, days: float = 0, hours: float = 0, minutes: float = 0, seconds: float = 0) -> datetime:
        """Move the bot's clock forward (trials, expiry, code cool-downs); returns the new time."""
        self.clock.advance(days=days, hours=hours, minutes=minutes, seconds=seconds)
        return self.clock.now()

    async def orders_of(self, user: ChatUser) -> list[Order]:
        """The user's orders, newest first (overdue ones come back expired, as the bot sees them)."""
        return await self.app.orders.list_for_user(user.id)

    async def last_order(self, user: ChatUser) -> Order:
        orders = await self.orders_of(user)
        if not orders:
            raise StepFailed(f"{user.fake.first_name} has no order; the screen was:\n{user.screen}")
        return orders[0]

    async def expect_order(self, user: ChatUser, status: OrderStatus | str) -> Order:
        """The user's newest order (made last; ties of a frozen clock keep creation order) must be
        in `status` (pending_payment, paid, bound, ...)."""
        order = await self.last_order(user)
        if order.status is not OrderStatus(status):
            raise StepFailed(
                f"expected the newest order to be {OrderStatus(status).value}, "
                f"found {order.id} {order.status.value}; the screen was:\n{user.screen}"
            )
        return order

    # --- customer service (F11): agents in the staff forum group ------------------------------

    @property
    def staff_chat_id(self) -> int:
        chat = self.app.settings.staff_chat_id
        if chat is None:
            raise StepFailed("this harness has no staff group (staff_group=False)")
        return chat

    def agent(self, name: str = "Agent", *, alias: str | None = None, lang: str = "zh",
              username: str | None = None) -> StaffAgent:
        """An agent: a member of the staff forum group. `alias` is how customers see them."""
        uid = next(self._agent_ids)
        fake = FakeUser(id=uid, first_name=name, language_code="en" if lang == "en" else "zh-hans",
                        username=username)
        return StaffAgent(self, fake, alias)

    async def ticket_of(self, user: ChatUser):
        """The user's current support ticket (live or resolved), or None."""
        _, ticket = await self.app.support.current(user.id)
        return ticket


STAFF_CHAT_ID = -1009876543210  # the harness's staff forum group


class StaffAgent:
    """An agent in the staff forum group (F11), seeing its topics and messages:

        agent = bot_harness.agent(name="Li", alias="客服小李")
        await agent.command("/queue")
        await agent.tap("🙋 接单", topic=buyer)
        await agent.send("您好", topic=buyer)
        agent.expect("客户已结束咨询", topic=buyer)
    """

    def __init__(self, harness: BotHarness, fake: FakeUser, alias: str | None) -> None:
        self.harness = harness
        self.fake = fake
        self._alias = alias
        self._alias_set = alias is None

    @property
    def id(self) -> int:
        return self.fake.id

    @property
    def telegram(self) -> FakeTelegram:
        return self.harness.telegram

    @property
    def chat_id(self) -> int:
        return self.harness.staff_chat_id

    async def _ready(self) -> None:
        if not self._alias_set:
            await self.harness.app.support.set_alias(self.id, self._alias, name=self.fake.first_name)
            self._alias_set = True

    def topic_id(self, topic: ChatUser | int | None) -> int | None:
        """A thread id: given, or the live topic of a customer (None is the General topic)."""
        if topic is None or isinstance(topic, int):
            return topic
        mark = f"#{topic.id}"
        found = [tid for tid, t in self.telegram.topics(self.chat_id).items() if t["name"].endswith(mark)]
        if not found:
            raise StepFailed(f"no topic for {topic.fake.first_name} in the staff group; topics: "
                             f"{[t['name'] for t in self.telegram.topics(self.chat_id).values()]}")
        return found[-1]

    def topics(self) -> dict[int, dict[str, Any]]:
        return self.telegram.topics(self.chat_id)

    def messages(self, topic: ChatUser | int | None = None, *, from_bot: bool | None = None) -> list[dict[str, Any]]:
        """The messages of a topic (or of the General topic), oldest first."""
        thread = self.topic_id(topic)
        return [m for m in self.telegram.messages(self.chat_id, from_bot=from_bot)
                if m.get("message_thread_id") == thread and "forum_topic_created" not in m]

    def texts(self, topic: ChatUser | int | None = None, *, from_bot: bool | None = True) -> list[str]:
        return [m.get("text") or m.get("caption") or "" for m in self.messages(topic, from_bot=from_bot)]

    def last(self, topic: ChatUser | int | None = None) -> Screen:
        """The bot's latest message in the topic, as a screen."""
        found = self.messages(topic, from_bot=True)
        return screen_of(self.telegram, self.chat_id, found[-1]["message_id"]) if found else Screen()

    def pinned(self, topic: ChatUser | int | None = None) -> list[dict[str, Any]]:
        thread = self.topic_id(topic)
        found = [self.telegram.message(self.chat_id, mid) for mid in self.telegram.pinned(self.chat_id)]
        return [m for m in found if m and m.get("message_thread_id") == thread]

    def expect(self, pattern: str | re.Pattern[str], *, topic: ChatUser | int | None = None) -> dict[str, Any]:
        """A bot message in the topic matches the regex (newest first); it is returned."""
        regex = pattern if isinstance(pattern, re.Pattern) else re.compile(pattern, re.MULTILINE)
        for message in reversed(self.messages(topic, from_bot=True)):
            if regex.search(message.get("text") or message.get("caption") or ""):
                return message
        shown = "\n".join(f"    {t}" for t in self.texts(topic)[-8:]) or "    (nothing)"
        raise StepFailed(f"expected a message matching /{regex.pattern}/ in the topic; the bot's last messages:\n{shown}")

    async def send(self, text: str, *, topic: ChatUser | int | None = None,
                   reply_to: int | None = None) -> dict[str, Any]:
        """Write in a topic (a customer's, by default the General one); returns the message sent."""
        await self._ready()
        update = self.telegram.message_update(self.fake, text, chat_id=self.chat_id,
                                              message_thread_id=self.topic_id(topic), reply_to_message_id=reply_to)
        await self.harness.feed(update)
        return update.message.model_dump(mode="json", exclude_none=True)

    async def command(self, text: str, *, topic: ChatUser | int | None = None) -> Screen:
        """A command (/queue, /close ...); returns the bot's latest message in that topic."""
        await self.send(text, topic=topic)
        return self.last(topic)

    async def send_media(self, kind: str, caption: str | None = None, *, topic: ChatUser | int | None = None,
                         reply_to: int | None = None) -> dict[str, Any]:
        await self._ready()
        update = self.telegram.media_update(self.fake, kind, caption, chat_id=self.chat_id,
                                            message_thread_id=self.topic_id(topic), reply_to_message_id=reply_to)
        await self.harness.feed(update)
        return update.message.model_dump(mode="json", exclude_none=True)

    async def edit(self, message_id: int, text: str) -> None:
        await self.harness.feed(self.telegram.edited_message_update(self.fake, message_id, text, chat_id=self.chat_id))

    async def tap(self, label: Label, *, topic: ChatUser | int | None = None) -> dict[str, Any] | None:
        """Press the newest inline button with this label in the topic; returns the bot's answer."""
        await self._ready()
        for message in reversed(self.messages(topic, from_bot=True)):
            for row in (message.get("reply_markup") or {}).get("inline_keyboard", []):
                for button in row:
                    if _matches(label, button["text"]) and "callback_data" in button:
                        update = self.telegram.callback_update(self.fake, message["message_id"],
                                                               button["callback_data"], self.chat_id)
                        await self.harness.feed(update)
                        return self.telegram.callback_answer(update.callback_query.id)
        shown = "\n".join(f"    {t}" for t in self.texts(topic)[-5:])
        raise StepFailed(f"no button {describe_label(label)} in the topic; the bot's last messages:\n{shown}")
