"""The fake Telegram for benchmarks, and buyers that build their updates cheaply.

`BenchTelegram` is esign_devkit.testing.fake_telegram.FakeTelegram without the test bookkeeping that
would otherwise dominate the measurement and grow without bound: no call log, no snapshot of
every bot message, no deep copies of what the bot sends or of the sender and chat of each
message, and a chat history cut to its last few messages. The Bot API methods themselves
(sendMessage, editMessageText, answerCallbackQuery, sendInvoice, answerPreCheckoutQuery, ...)
behave exactly as in the tests, errors included, and aiogram still serializes each request and
parses each response as it does over HTTP.

`BenchUser` builds raw update JSON (what a webhook receives) directly, reading the buttons the
bot really sent: a tap presses the button whose callback data starts with the given prefix
on the latest bot message that has one, and fails loudly when the bot did not offer it.
"""
from __future__ import annotations

import inspect
import itertools
import re
from dataclasses import dataclass, field
from typing import Any

from esign_devkit.testing.fake_telegram import JSON, TEST_ONLY_KEYS, FakeApiError, FakeTelegram, FakeUser

KEEP_MESSAGES = 6  # per chat; the bench only ever looks at the last bot messages


class FlowBroken(AssertionError):
    """The bot did not answer as the purchase expects (a missing button, a refused payment)."""


class BenchTelegram(FakeTelegram):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.api_calls = 0
        self.api_errors = 0

    async def call(self, method: str, params: JSON) -> Any:
        self.api_calls += 1
        handler = self._handlers.get(method.lower())
        try:
            if handler is None:
                raise FakeApiError(404, "Not Found")
            result = handler(params)
            if inspect.isawaitable(result):
                result = await result
            return result
        except FakeApiError:
            self.api_errors += 1
            raise

    def _notify(self, msg: JSON) -> None:
        pass  # no snapshots, no waiters

    def _new_message(self, chat: Any, sender: JSON, content: JSON) -> JSON:
        # The sender and chat are shared, not copied: nothing changes them during a bench.
        chat.last_id += 1
        return {"message_id": chat.last_id, "from": sender, "chat": chat.info, "date": int(self.clock()), **content}

    def _public(self, msg: JSON, *, nested: bool = False) -> JSON:
        # The result is serialized to JSON at once by the session: no copy needed.
        hidden = TEST_ONLY_KEYS + (("reply_to_message",) if nested else ())
        return {k: v for k, v in msg.items() if k not in hidden}

    # --- the user side, without copies -------------------------------------------------------

    def open_chat(self, user: FakeUser) -> None:
        self.register_user(user)

    def new_user_message_id(self, chat_id: int) -> int:
        chat = self._chats[chat_id]
        chat.last_id += 1
        return chat.last_id

    def latest_button(self, chat_id: int, prefix: str) -> tuple[JSON, str]:
        """(message, callback_data) of the newest bot message with a button whose data starts with `prefix`."""
        chat = self._chats[chat_id]
        for msg in reversed(chat.messages.values()):
            if msg["from"]["id"] != self.bot_id:
                continue
            for row in (msg.get("reply_markup") or {}).get("inline_keyboard", ()):
                for button in row:
                    data = button.get("callback_data")
                    if data is not None and data.startswith(prefix):
                        return msg, data
        last = self.latest_text(chat_id)
        raise FlowBroken(f"chat {chat_id}: no button {prefix!r}; the bot's last message: {last!r}")

    def latest_text(self, chat_id: int) -> str:
        chat = self._chats[chat_id]
        for msg in reversed(chat.messages.values()):
            if msg["from"]["id"] == self.bot_id:
                return msg.get("text") or (msg.get("invoice") or {}).get("title", "")
        return ""

    def latest_invoice(self, chat_id: int) -> JSON:
        for msg in reversed(self._chats[chat_id].messages.values()):
            if "invoice" in msg and (chat_id, msg["message_id"]) in self._invoices:
                return self._invoices[(chat_id, msg["message_id"])]
        raise FlowBroken(f"chat {chat_id}: no invoice; the bot's last message: {self.latest_text(chat_id)!r}")

    def open_callback(self, query_id: str) -> None:
        self._open_callbacks.add(query_id)

    def open_pre_checkout(self, query_id: str) -> None:
        self._open_pre_checkouts.add(query_id)

    def trim(self, chat_id: int, keep: int = KEEP_MESSAGES) -> None:
        chat = self._chats[chat_id]
        while len(chat.messages) > keep:
            message_id = next(iter(chat.messages))
            del chat.messages[message_id]
            self._invoices.pop((chat_id, message_id), None)

    def forget(self, chat_id: int) -> None:
        chat = self._chats.pop(chat_id, None)
        for message_id in chat.messages if chat else ():
            self._invoices.pop((chat_id, message_id), None)


_update_ids = itertools.count(1)
_query_ids = itertools.count(7_000_000_000_000_000)


@dataclass
class BenchUser:
    """One simulated user: builds the raw updates Telegram would send for their actions."""

    telegram: BenchTelegram
    fake: FakeUser
    user: JSON = field(init=False)
    chat: JSON = field(init=False)

    def __post_init__(self) -> None:
        self.telegram.open_chat(self.fake)
        self.user = self.fake.to_dict()
        self.chat = self.fake.private_chat()

    @property
    def id(self) -> int:
        return self.fake.id

    def _message(self, content: JSON) -> JSON:
        return {
            "update_id": next(_update_ids),
            "message": {
                "message_id": self.telegram.new_user_message_id(self.id),
                "date": 1_767_578_400,
                "chat": self.chat,
                "from": self.user,
                **content,
            },
        }

    def text(self, text: str) -> JSON:
        content: JSON = {"text": text}
        match = re.match(r"/\w+", text)
        if match:
            content["entities"] = [{"type": "bot_command", "offset": 0, "length": match.end()}]
        return self._message(content)

    def contact(self, phone: str) -> JSON:
        return self._message({"contact": {"phone_number": phone, "first_name": self.fake.first_name,
                                          "user_id": self.id}})

    def tap(self, prefix: str) -> JSON:
        message, data = self.telegram.latest_button(self.id, prefix)
        query_id = str(next(_query_ids))
        self.telegram.open_callback(query_id)
        return {
            "update_id": next(_update_ids),
            "callback_query": {
                "id": query_id,
                "from": self.user,
                "chat_instance": str(self.id * 7919 + 13),
                "message": {k: v for k, v in message.items() if k not in TEST_ONLY_KEYS},
                "data": data,
            },
        }

    def pre_checkout(self, invoice: JSON) -> JSON:
        query_id = str(next(_query_ids))
        self.telegram.open_pre_checkout(query_id)
        return {
            "update_id": next(_update_ids),
            "pre_checkout_query": {
                "id": query_id,
                "from": self.user,
                "currency": invoice["currency"],
                "total_amount": invoice["total_amount"],
                "invoice_payload": invoice["payload"],
            },
        }

    def successful_payment(self, invoice: JSON, charge_id: str) -> JSON:
        return self._message({"successful_payment": {
            "currency": invoice["currency"],
            "total_amount": invoice["total_amount"],
            "invoice_payload": invoice["payload"],
            "telegram_payment_charge_id": charge_id,
            "provider_payment_charge_id": "p-" + charge_id,
        }})
