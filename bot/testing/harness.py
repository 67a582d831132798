"""A testing API that reads like the conversation it checks (see docs/testing.md).

    buyer = bot_harness.user(lang="zh")
    await buyer.send("/start")
    await buyer.tap("购买套餐")
    await buyer.share_contact()
    await buyer.send(bot_harness.sms.last_code(buyer.phone))
    await buyer.pay()

It drives the production dispatcher (bot.app.build_dispatcher) on a real Redis, through the
fake Telegram of bot.testing.fake_telegram. A failing step says what was on the screen.
"""
from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from typing import Any

from aiogram import Bot, Dispatcher
from aiogram.types import Update
from redis.asyncio import Redis

from bot.app import build_context, build_dispatcher
from bot.context import AppContext
from bot.testing.fake_telegram import FakeTelegram, FakeUser
from config.settings import Settings
from services.clock import FixedClock
from services.enterprises import Enterprise, Role
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

    def __init__(self, harness: "BotHarness", fake: FakeUser) -> None:
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
        message = self.telegram.last_message(self.id, from_bot=True)
        if message is None:
            return Screen()
        markup = message.get("reply_markup") or {}
        keyboard = self.telegram.reply_keyboard(self.id) or {}
        invoice = next((i for i in self.telegram.invoices(self.id) if i["message_id"] == message["message_id"]), None)
        return Screen(
            text=message.get("text") or message.get("caption") or (invoice or {}).get("description", ""),
            buttons=[b["text"] for row in markup.get("inline_keyboard", []) for b in row],
            keyboard=[b["text"] for row in keyboard.get("keyboard", []) for b in row],
            message_id=message["message_id"],
            invoice=invoice,
        )

    def bot_messages(self) -> list[str]:
        return [m.get("text") or "" for m in self.telegram.messages(self.id, from_bot=True)]

    async def send(self, text: str) -> Screen:
        await self.harness.feed(self.telegram.message_update(self.fake, text))
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


class BotHarness:
    """The production dispatcher on a test Redis, a fake Telegram, a fixed clock and the console SMS."""

    _user_ids = itertools.count(5_000_001)

    def __init__(self, redis: Redis, *, clock: FixedClock | None = None, settings: Settings | None = None) -> None:
        self.redis = redis
        self.clock = clock or FixedClock()
        self.settings = settings or Settings(_env_file=None, bot_token=None, code_secret="test-secret")
        self.telegram = FakeTelegram()
        self.bot: Bot = self.telegram.make_bot()
        self.sms = SmsOutbox(ConsoleSms(self.clock))
        self.app: AppContext = build_context(self.settings, redis, clock=self.clock, sms=self.sms.gateway)
        self.dp: Dispatcher = build_dispatcher(self.app)

    def restart(self) -> None:
        """A new process: a fresh dispatcher and services on the same Redis and Telegram."""
        self.app = build_context(self.settings, self.redis, clock=self.clock, sms=self.sms.gateway)
        self.dp = build_dispatcher(self.app)

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
        return await self.dp.feed_update(self.bot, update)

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
