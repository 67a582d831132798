"""An in-process stand-in for the Telegram Bot API, shared by the tests and the local playground.

`FakeTelegram.call(method, params)` executes a Bot API method on plain JSON params and returns the
plain JSON result (or raises `FakeApiError` with Telegram's own wording), so the same world can be
driven through aiogram (`FakeTelegramSession`, `FakeTelegram.make_bot`) or over HTTP
(`esign_devkit.testing.bot_api_server`). The user side is built with `FakeUser` and the `*_update` builders.

Stored bot messages are the JSON Telegram returns, plus one test-only key: `reply_keyboard`, the
reply keyboard (or ReplyKeyboardRemove / ForceReply) sent with the message, which Telegram never
echoes back; it is stripped from API results.
"""
from __future__ import annotations

import asyncio
import contextlib
import copy
import hashlib
import hmac
import inspect
import itertools
import json
import logging
import re
import secrets
import time
from collections import defaultdict, deque
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from aiogram.client.session.base import BaseSession
from aiogram.types import Update

if TYPE_CHECKING:
    from aiogram import Bot
    from aiogram.methods import TelegramMethod
    from aiogram.methods.base import TelegramType

JSON = dict[str, Any]
log = logging.getLogger(__name__)

NOT_MODIFIED = (
    "message is not modified: specified new message content and reply markup are exactly "
    "the same as a current content and reply markup of the message"
)
QUERY_TOO_OLD = "query is too old and response timeout expired or query ID is invalid"
MAX_POLL_SECONDS = 5.0  # long polls are capped so tests and shutdown never hang long
TEST_ONLY_KEYS = ("reply_keyboard",)
CONTENT_KEYS = ("text", "entities", "caption", "photo", "document", "voice", "video", "sticker", "contact")
DEFAULT_DESCRIPTIONS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden: bot was blocked by the user",
    404: "Not Found",
    409: "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running",
    429: "Too Many Requests: retry after {retry_after}",
    500: "Internal Server Error",
    502: "Bad Gateway",
}


class FakeApiError(Exception):
    """A Bot API error: `error_code` is also the HTTP status, `description` is Telegram's text."""

    def __init__(self, error_code: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(f"{error_code} {description}")
        self.error_code = error_code
        self.description = description
        self.retry_after = retry_after

    def to_response(self) -> JSON:
        body: JSON = {"ok": False, "error_code": self.error_code, "description": self.description}
        if self.retry_after is not None:
            body["parameters"] = {"retry_after": self.retry_after}
        return body


def _bad(text: str) -> FakeApiError:
    return FakeApiError(400, f"Bad Request: {text}")


@dataclass
class ApiCall:
    method: str
    params: JSON
    result: Any = None
    error: FakeApiError | None = None


@dataclass
class FakeUser:
    id: int
    first_name: str
    language_code: str = "en"  # "zh-hans" or "en"
    username: str | None = None
    phone: str | None = None
    last_name: str | None = None

    def to_dict(self) -> JSON:
        data: JSON = {"id": self.id, "is_bot": False, "first_name": self.first_name}
        for key in ("last_name", "username", "language_code"):
            if getattr(self, key):
                data[key] = getattr(self, key)
        return data

    def private_chat(self) -> JSON:
        data: JSON = {"id": self.id, "type": "private", "first_name": self.first_name}
        for key in ("last_name", "username"):
            if getattr(self, key):
                data[key] = getattr(self, key)
        return data


@dataclass
class _Chat:
    info: JSON
    messages: dict[int, JSON] = field(default_factory=dict)  # message_id -> message (insertion = id order)
    edits: dict[int, int] = field(default_factory=dict)
    topics: dict[int, JSON] = field(default_factory=dict)  # message_thread_id -> ForumTopic + "is_closed"
    pinned: list[int] = field(default_factory=list)
    reply_keyboard: JSON | None = None
    last_id: int = 0

    @property
    def is_forum(self) -> bool:
        return bool(self.info.get("is_forum"))


# --- small coercions: over HTTP every scalar arrives as a string ------------------------------

def _int(value: Any, default: int = 0) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _bool(value: Any) -> bool:
    return value in (True, 1, "true", "True", "1")


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _update_type(update: JSON) -> str:
    return next(key for key in update if key != "update_id")


def _buttons(markup: JSON | None) -> list[JSON]:
    rows = (markup or {}).get("inline_keyboard") or []
    return [button for row in rows for button in row]


def _command_entities(text: str) -> list[JSON]:
    # Telegram marks a leading /command; some handlers look at entities rather than text.
    match = re.match(r"/\w+(@\w+)?", text)
    return [{"type": "bot_command", "offset": 0, "length": match.end()}] if match else []


def _file_id(value: Any, kind: str) -> str:
    if isinstance(value, str) and value and not value.startswith("attach://"):
        return value
    return f"{kind}-{secrets.token_hex(8)}"  # an upload: Telegram assigns a fresh file_id


def _media(kind: str, file_id: str) -> Any:
    unique = f"u-{file_id[-12:]}"
    base: JSON = {"file_id": file_id, "file_unique_id": unique}
    shapes: dict[str, Any] = {
        "photo": [{**base, "width": 1280, "height": 960, "file_size": 1024}],
        "document": {**base, "file_name": "file.pdf", "mime_type": "application/pdf"},
        "voice": {**base, "duration": 3},
        "video": {**base, "width": 1280, "height": 720, "duration": 5},
        "sticker": {**base, "type": "regular", "width": 512, "height": 512, "is_animated": False, "is_video": False},
    }
    return shapes[kind]


def fresh_update_id() -> int:
    """A first update id above those of earlier runs: the bot drops an update id it has seen in
    the last 24 h (Redis keeps that mark), so a playground on a persistent Redis starts higher."""
    return int(time.time() * 1_000_000)


class FakeTelegram:
    """The Bot API world: the bot user, chats with their messages, queries, updates and a call log."""

    def __init__(
        self,
        *,
        bot_id: int = 777000111,
        username: str = "esign_demo_bot",
        first_name: str = "E-Sign Bot",
        clock: Callable[[], float] = time.time,
        first_update_id: int = 1,
    ) -> None:
        self.bot_user: JSON = {"id": bot_id, "is_bot": True, "first_name": first_name, "username": username}
        self.clock = clock
        self.calls: list[ApiCall] = []
        self.callback_answers: dict[str, JSON] = {}
        self.pre_checkout_answers: dict[str, JSON] = {}
        self.commands: dict[str, list[JSON]] = {}
        self.webhook_url = ""
        self.blocked: set[int] = set()  # user ids that blocked the bot
        self.left: set[int] = set()  # groups the bot left (leaveChat)
        self.on_bot_message: list[Callable[[JSON], None]] = []
        self.bot_log: list[JSON] = []  # snapshot of every message the bot sent or edited, in order
        self._chats: dict[int, _Chat] = {}
        self._failures: dict[str, deque[FakeApiError]] = defaultdict(deque)
        self._open_callbacks: set[str] = set()
        self._open_pre_checkouts: set[str] = set()
        self._invoices: dict[tuple[int, int], JSON] = {}
        # Telegram Stars paid to the bot: charge id -> {"user_id", "amount", "refunded"}
        self.star_charges: dict[str, JSON] = {}
        self._update_ids = itertools.count(first_update_id)
        self._query_ids = itertools.count(1)
        self._raw_updates: dict[int, JSON] = {}
        self._pending: list[JSON] = []
        self._last_pushed_id = 0
        self._allowed_updates: list[str] | None = None
        self._poll_generation = 0
        self._releases = 0
        self._closed = False
        # Replaced (not cleared) on every wake-up, so each waiter sees the set() meant for it.
        self._wakeup = asyncio.Event()
        self._bot_event = asyncio.Event()
        self._bot: Bot | None = None
        handlers: dict[str, Callable[[JSON], Any]] = {
            "getMe": self._get_me,
            "getUpdates": self._get_updates,
            "setWebhook": self._set_webhook,
            "deleteWebhook": self._delete_webhook,
            "getWebhookInfo": self._get_webhook_info,
            "setMyCommands": self._set_my_commands,
            "deleteMyCommands": self._delete_my_commands,
            "getMyCommands": self._get_my_commands,
            "sendMessage": self._send_message,
            "editMessageText": self._edit_message_text,
            "editMessageCaption": self._edit_message_caption,
            "editMessageReplyMarkup": self._edit_message_reply_markup,
            "deleteMessage": self._delete_message,
            "answerCallbackQuery": self._answer_callback_query,
            "sendInvoice": self._send_invoice,
            "refundStarPayment": self._refund_star_payment,
            "answerPreCheckoutQuery": self._answer_pre_checkout_query,
            "sendChatAction": self._send_chat_action,
            "createForumTopic": self._create_forum_topic,
            "editForumTopic": self._edit_forum_topic,
            "closeForumTopic": lambda p: self._set_topic_closed(p, True),
            "reopenForumTopic": lambda p: self._set_topic_closed(p, False),
            "deleteForumTopic": self._delete_forum_topic,
            "pinChatMessage": self._pin_chat_message,
            "unpinChatMessage": self._unpin_chat_message,
            "getChat": self._get_chat,
            "getChatMember": self._get_chat_member,
            "leaveChat": self._leave_chat,
            "copyMessage": self._copy_message,
            **{f"send{kind.capitalize()}": self._media_handler(kind)
               for kind in ("photo", "document", "voice", "video", "sticker")},
        }
        # Telegram matches method names case-insensitively.
        self._handlers = {name.lower(): handler for name, handler in handlers.items()}

    # --- identity ------------------------------------------------------------------------------

    @property
    def bot_id(self) -> int:
        return cast(int, self.bot_user["id"])

    @property
    def username(self) -> str:
        return cast(str, self.bot_user["username"])

    def make_bot(self, token: str | None = None, **bot_kwargs: Any) -> Bot:
        """An aiogram Bot talking to this fake; the default token starts with bot_id, as real ones do."""
        from aiogram import Bot

        bot = Bot(token or f"{self.bot_id}:TEST", session=FakeTelegramSession(self), **bot_kwargs)
        self._bot = bot  # built updates are mounted on it, so shortcuts like message.answer() work
        return bot

    # --- the API -------------------------------------------------------------------------------

    async def call(self, method: str, params: JSON) -> Any:
        """Execute one Bot API method; returns the JSON result or raises FakeApiError."""
        record = ApiCall(method, copy.deepcopy(params))
        self.calls.append(record)
        try:
            handler = self._handlers.get(method.lower())
            if handler is None:
                raise FakeApiError(404, "Not Found")
            if self._failures[method.lower()]:
                raise self._failures[method.lower()].popleft()
            result = handler(params)
            if inspect.isawaitable(result):
                result = await result
        except FakeApiError as error:
            record.error = error
            raise
        record.result = result
        return result

    def fail_next(self, method: str, error_code: int, description: str = "", retry_after: int | None = None) -> None:
        """Make the next call of `method` fail once (calling it twice queues two failures)."""
        if error_code == 429 and retry_after is None:
            retry_after = 1  # Telegram always says how long to wait
        text = description or DEFAULT_DESCRIPTIONS.get(error_code, "Error").format(retry_after=retry_after)
        self._failures[method.lower()].append(FakeApiError(error_code, text, retry_after))

    def calls_of(self, method: str) -> list[ApiCall]:
        return [c for c in self.calls if c.method.lower() == method.lower()]

    # --- reading state -------------------------------------------------------------------------

    def chat(self, chat_id: int) -> JSON | None:
        chat = self._chats.get(chat_id)
        return copy.deepcopy(chat.info) if chat else None

    def messages(self, chat_id: int, *, from_bot: bool | None = None) -> list[JSON]:
        """Current messages of a chat in id order: edits applied, deleted ones gone."""
        chat = self._chats.get(chat_id)
        found = list(chat.messages.values()) if chat else []
        if from_bot is not None:
            found = [m for m in found if (m["from"]["id"] == self.bot_id) == from_bot]
        return copy.deepcopy(found)

    def last_message(self, chat_id: int, *, from_bot: bool | None = True) -> JSON | None:
        """The latest message the bot sent (from_bot=None: of anyone) in the chat, or None."""
        found = self.messages(chat_id, from_bot=from_bot)
        return found[-1] if found else None

    def message(self, chat_id: int, message_id: int) -> JSON | None:
        chat = self._chats.get(chat_id)
        msg = chat.messages.get(message_id) if chat else None
        return copy.deepcopy(msg) if msg else None

    def edit_count(self, chat_id: int, message_id: int) -> int:
        chat = self._chats.get(chat_id)
        return chat.edits.get(message_id, 0) if chat else 0

    def invoices(self, chat_id: int) -> list[JSON]:
        """Invoices still in the chat: the sendInvoice params plus message_id and total_amount."""
        chat = self._chats.get(chat_id)
        return [copy.deepcopy(inv) for (cid, mid), inv in self._invoices.items()
                if cid == chat_id and chat and mid in chat.messages]

    def reply_keyboard(self, chat_id: int) -> JSON | None:
        """The reply keyboard the user currently sees in the chat (None once removed)."""
        chat = self._chats.get(chat_id)
        return copy.deepcopy(chat.reply_keyboard) if chat else None

    def topics(self, chat_id: int) -> dict[int, JSON]:
        chat = self._chats.get(chat_id)
        return copy.deepcopy(chat.topics) if chat else {}

    def pinned(self, chat_id: int) -> list[int]:
        chat = self._chats.get(chat_id)
        return list(chat.pinned) if chat else []

    def callback_answer(self, query_id: str) -> JSON | None:
        return copy.deepcopy(self.callback_answers.get(query_id))

    def pre_checkout_answer(self, query_id: str) -> JSON | None:
        """What the bot answered to a pre-checkout query: {"ok": bool, "error_message"?} or None."""
        return copy.deepcopy(self.pre_checkout_answers.get(query_id))

    def my_commands(self, scope: JSON | None = None, language_code: str = "") -> list[JSON] | None:
        return copy.deepcopy(self.commands.get(self._commands_key(scope, language_code)))

    def find_button(self, chat_id: int, label_or_regex: str | re.Pattern[str]) -> tuple[int, JSON]:
        """(message_id, button) of an inline button whose text equals the label (or matches the
        regex), searching the latest bot message with an inline keyboard first, then older ones."""
        def matches(text: str) -> bool:
            if isinstance(label_or_regex, re.Pattern):
                return label_or_regex.search(text) is not None
            return text == label_or_regex

        seen: list[str] = []
        for msg in reversed(self.messages(chat_id, from_bot=True)):
            for button in _buttons(msg.get("reply_markup")):
                if matches(button["text"]):
                    return msg["message_id"], button
                seen.append(button["text"])
        raise LookupError(f"no inline button {label_or_regex!r} in chat {chat_id}; buttons: {seen}")

    def has_button(self, chat_id: int, message_id: int, callback_data: str) -> bool:
        msg = self.message(chat_id, message_id)
        return any(b.get("callback_data") == callback_data for b in _buttons((msg or {}).get("reply_markup")))

    async def wait_for_message(
        self,
        chat_id: int,
        predicate: Callable[[JSON], bool] | None = None,
        timeout: float = 10.0,
        *,
        since: int | None = None,
    ) -> JSON:
        """Wait for a bot message (sent or edited) in the chat matching the predicate.

        Only messages logged after the call count, unless `since` gives an earlier index into
        `bot_log` (take `len(fake.bot_log)` before triggering the bot to avoid a race)."""
        position = len(self.bot_log) if since is None else since
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            for snapshot in self.bot_log[position:]:
                if snapshot["chat"]["id"] == chat_id and (predicate is None or predicate(snapshot)):
                    return copy.deepcopy(snapshot)
            position = len(self.bot_log)
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                recent = [m.get("text", m.get("caption")) for m in self.messages(chat_id)[-5:]]
                raise TimeoutError(f"no matching bot message in chat {chat_id} in {timeout}s; recent: {recent}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._bot_event.wait(), remaining)

    # --- chats and users -----------------------------------------------------------------------

    def register_user(self, user: FakeUser) -> JSON:
        """Open (or refresh) the user's private chat, as their first message to the bot does."""
        chat = self._chats.setdefault(user.id, _Chat(info=user.private_chat()))
        chat.info = user.private_chat()
        return copy.deepcopy(chat.info)

    def add_chat(self, chat_id: int, *, type: str = "supergroup", title: str = "Group", is_forum: bool = False) -> JSON:
        """A group the bot is in; forum supergroups accept topics."""
        info: JSON = {"id": chat_id, "type": type, "title": title}
        if is_forum:
            info["is_forum"] = True
        self._chats[chat_id] = _Chat(info=info)
        return copy.deepcopy(info)

    def block(self, user_id: int) -> None:
        self.blocked.add(user_id)

    # --- updates: building and queueing for getUpdates -----------------------------------------

    def next_update_id(self) -> int:
        return next(self._update_ids)

    def push_update(self, update: Update | JSON) -> JSON:
        """Queue an update for getUpdates; returns its JSON form."""
        if isinstance(update, Update):
            data = self._raw_updates.get(update.update_id) or update.model_dump(
                mode="json", by_alias=True, exclude_none=True
            )
        else:
            data = update
        data = copy.deepcopy(data)
        if data.get("update_id", 0) <= self._last_pushed_id:
            data["update_id"] = self.next_update_id()  # keep the queue increasing, as Telegram's is
        self._last_pushed_id = data["update_id"]
        self._pending.append(data)
        self._wake_pollers()
        return data

    @property
    def pending_updates(self) -> list[JSON]:
        return copy.deepcopy(self._pending)

    def release_pollers(self) -> None:
        """End the long polls waiting right now: they return [] (used on server shutdown)."""
        self._releases += 1
        self._wake_pollers()

    def close(self) -> None:
        """Release waiting long polls and never wait again (getUpdates answers at once)."""
        self._closed = True
        self.release_pollers()

    def message_update(
        self,
        user: FakeUser,
        text: str | None = None,
        *,
        contact: JSON | None = None,
        chat_id: int | None = None,
        message_thread_id: int | None = None,
        reply_to_message_id: int | None = None,
        photo: str | None = None,
        document: str | None = None,
    ) -> Update:
        """The user writes to the bot (private chat by default); with media the text is the caption."""
        content: JSON = {}
        if photo:
            content["photo"] = _media("photo", photo)
        if document:
            content["document"] = _media("document", document)
        if contact:
            content["contact"] = contact
        if text is not None:
            if photo or document:
                content["caption"] = text
            else:
                content["text"] = text
                if entities := _command_entities(text):
                    content["entities"] = entities
        msg = self._user_message(user, chat_id, content, message_thread_id, reply_to_message_id)
        return self._update(message=msg)

    def my_chat_member_update(self, user: FakeUser, chat_id: int, status: str = "member",
                              old_status: str = "left") -> Update:
        """`user` changed the bot's membership of a group (added it: "member" or "administrator";
        removed it: "left" or "kicked")."""
        chat = self._chat_by_id(chat_id)
        bot = {**self.bot_user}

        def member(state: str) -> JSON:
            if state == "administrator":
                rights = ("can_manage_chat", "can_delete_messages", "can_manage_video_chats", "can_restrict_members",
                          "can_change_info", "can_invite_users", "can_post_stories", "can_edit_stories",
                          "can_delete_stories", "can_send_welcome_messages")
                return {"status": state, "user": bot, "can_be_edited": False, "is_anonymous": False,
                        "can_promote_members": False, **dict.fromkeys(rights, True)}
            if state == "kicked":
                return {"status": state, "user": bot, "until_date": 0}
            return {"status": state, "user": bot}

        change = {"chat": copy.deepcopy(chat.info), "from": user.to_dict(), "date": int(self.clock()),
                  "old_chat_member": member(old_status), "new_chat_member": member(status)}
        return self._update(my_chat_member=change)

    def contact_update(
        self, user: FakeUser, phone_number: str | None = None, *, own: bool = True, chat_id: int | None = None
    ) -> Update:
        """A shared contact: the user's own (user_id = user.id), or someone else's (another user_id).

        The number is passed verbatim: real clients often send it without the leading '+'."""
        phone = phone_number or user.phone
        if not phone:
            raise ValueError("contact_update needs a phone_number or user.phone")
        if own:
            contact: JSON = {"phone_number": phone, "first_name": user.first_name, "user_id": user.id}
            if user.last_name:
                contact["last_name"] = user.last_name
        else:
            contact = {"phone_number": phone, "first_name": "Someone Else", "user_id": user.id + 1_000_000_000}
        return self.message_update(user, contact=contact, chat_id=chat_id)

    def callback_update(
        self, user: FakeUser, message_id: int, data: str, chat_id: int | None = None, *, strict: bool = False
    ) -> Update:
        """The user presses an inline button under a bot message. Stale or forged buttons are still
        delivered (with an InaccessibleMessage if the message is gone) unless strict=True."""
        chat_id = user.id if chat_id is None else chat_id
        if chat_id == user.id:
            self.register_user(user)
        if strict and not self.has_button(chat_id, message_id, data):
            raise LookupError(f"message {message_id} in chat {chat_id} has no button {data!r}")
        msg = self.message(chat_id, message_id)
        chat_info = self.chat(chat_id) or {"id": chat_id, "type": "private"}
        message = self._public(msg) if msg else {"chat": chat_info, "message_id": message_id, "date": 0}
        query_id = self._new_query_id()
        self._open_callbacks.add(query_id)
        query = {
            "id": query_id,
            "from": user.to_dict(),
            "chat_instance": str(abs(chat_id) * 7919 + 13),  # stable per chat, as Telegram's is
            "message": message,
            "data": data,
        }
        return self._update(callback_query=query)

    def click(self, user: FakeUser, label_or_regex: str | re.Pattern[str], *, chat_id: int | None = None) -> Update:
        """find_button + callback_update in one go."""
        chat_id = user.id if chat_id is None else chat_id
        message_id, button = self.find_button(chat_id, label_or_regex)
        if "callback_data" not in button:
            raise LookupError(f"button {button['text']!r} has no callback_data: {button}")
        return self.callback_update(user, message_id, button["callback_data"], chat_id)

    def pre_checkout_update(
        self,
        user: FakeUser,
        invoice_message_id: int,
        *,
        chat_id: int | None = None,
        total_amount: int | None = None,
        invoice_payload: str | None = None,
        currency: str | None = None,
    ) -> Update:
        """The user presses Pay on a stored invoice; the overrides forge a tampered query."""
        invoice = self._invoice(user.id if chat_id is None else chat_id, invoice_message_id)
        query_id = self._new_query_id()
        self._open_pre_checkouts.add(query_id)
        query = {
            "id": query_id,
            "from": user.to_dict(),
            "currency": currency or invoice["currency"],
            "total_amount": invoice["total_amount"] if total_amount is None else total_amount,
            "invoice_payload": invoice["payload"] if invoice_payload is None else invoice_payload,
        }
        return self._update(pre_checkout_query=query)

    def successful_payment_update(
        self,
        user: FakeUser,
        invoice_message_id: int,
        *,
        charge_id: str | None = None,
        total_amount: int | None = None,
        invoice_payload: str | None = None,
        chat_id: int | None = None,
    ) -> Update:
        """The service message Telegram sends after a payment for a stored invoice."""
        invoice = self._invoice(user.id if chat_id is None else chat_id, invoice_message_id)
        payment = {
            "currency": invoice["currency"],
            "total_amount": invoice["total_amount"] if total_amount is None else total_amount,
            "invoice_payload": invoice["payload"] if invoice_payload is None else invoice_payload,
            "telegram_payment_charge_id": charge_id or f"tg-{secrets.token_hex(12)}",
            # Stars have no payment provider: Telegram leaves its charge id empty
            "provider_payment_charge_id": "" if invoice["currency"] == "XTR" else f"provider-{secrets.token_hex(8)}",
        }
        if invoice["currency"] == "XTR":
            self.star_charges[payment["telegram_payment_charge_id"]] = {
                "user_id": user.id, "amount": payment["total_amount"], "refunded": False}
        msg = self._user_message(user, chat_id, {"successful_payment": payment}, None, None)
        return self._update(message=msg)

    def media_update(
        self,
        user: FakeUser,
        kind: str,
        caption: str | None = None,
        *,
        chat_id: int | None = None,
        message_thread_id: int | None = None,
        reply_to_message_id: int | None = None,
    ) -> Update:
        """The user sends a photo, document, voice, video or sticker (a caption where it takes one)."""
        file_id = f"{kind}-{secrets.token_hex(6)}"
        content: JSON = {kind: _media(kind, file_id)}
        if caption is not None and kind != "sticker":
            content["caption"] = caption
        msg = self._user_message(user, chat_id, content, message_thread_id, reply_to_message_id)
        return self._update(message=msg)

    def edited_message_update(self, user: FakeUser, message_id: int, new_text: str, chat_id: int | None = None) -> Update:
        """The user edits one of their messages; the stored history is edited too."""
        chat = self._chats.get(user.id if chat_id is None else chat_id)
        msg = chat.messages.get(message_id) if chat else None
        if chat is None or msg is None:
            raise LookupError(f"no message {message_id} in chat {chat_id or user.id}")
        msg["caption" if "caption" in msg else "text"] = new_text
        msg["edit_date"] = int(self.clock())
        chat.edits[message_id] = chat.edits.get(message_id, 0) + 1
        return self._update(edited_message=self._public(msg))

    # --- internals: messages -------------------------------------------------------------------

    def _update(self, **payload: JSON) -> Update:
        data: JSON = {"update_id": self.next_update_id(), **payload}
        self._raw_updates[data["update_id"]] = copy.deepcopy(data)
        return Update.model_validate(data, context={"bot": self._bot})

    def _new_query_id(self) -> str:
        return str(4_000_000_000_000_000 + next(self._query_ids))

    def _public(self, msg: JSON, *, nested: bool = False) -> JSON:
        """The message as the API returns it (a nested reply carries no reply of its own)."""
        hidden = TEST_ONLY_KEYS + (("reply_to_message",) if nested else ())
        return {k: copy.deepcopy(v) for k, v in msg.items() if k not in hidden}

    def _chat_by_id(self, chat_id: Any) -> _Chat:
        if chat_id in (None, ""):
            raise _bad("chat_id is empty")
        if isinstance(chat_id, str) and chat_id.startswith("@"):
            for chat in self._chats.values():
                if chat.info.get("username", "").lower() == chat_id[1:].lower():
                    return chat
            raise _bad("chat not found")
        chat = self._chats.get(_int(chat_id))
        if chat is None:
            raise _bad("chat not found")
        return chat

    def _target_chat(self, p: JSON) -> _Chat:
        chat = self._chat_by_id(p.get("chat_id"))
        if chat.info["id"] in self.blocked:
            raise FakeApiError(403, "Forbidden: bot was blocked by the user")
        return chat

    def _new_message(self, chat: _Chat, sender: JSON, content: JSON) -> JSON:
        chat.last_id += 1
        return {
            "message_id": chat.last_id,
            "from": copy.deepcopy(sender),
            "chat": copy.deepcopy(chat.info),
            "date": int(self.clock()),
            **content,
        }

    def _place(self, chat: _Chat, msg: JSON, thread_id: Any, reply: JSON | None) -> None:
        """Thread and reply fields; a forum topic message replies to the topic's creation message,
        exactly as Telegram does, unless it replies to something else."""
        if thread_id is not None and chat.is_forum:
            thread = _int(thread_id)
            if thread not in chat.topics:
                raise _bad("message thread not found")
            msg["message_thread_id"] = thread
            msg["is_topic_message"] = True
        if reply and reply.get("message_id") is not None:
            target = chat.messages.get(_int(reply["message_id"]))
            if target is not None:
                msg["reply_to_message"] = self._public(target, nested=True)
            elif not _bool(reply.get("allow_sending_without_reply")):
                raise _bad("message to be replied not found")
        elif "message_thread_id" in msg and msg["message_thread_id"] in chat.messages:
            msg["reply_to_message"] = self._public(chat.messages[msg["message_thread_id"]], nested=True)

    def _user_message(
        self, user: FakeUser, chat_id: int | None, content: JSON, thread_id: int | None, reply_to: int | None
    ) -> JSON:
        if chat_id is None or chat_id == user.id:
            self.register_user(user)
            chat_id = user.id
        chat = self._chats.get(chat_id)
        if chat is None:
            raise LookupError(f"unknown chat {chat_id}: add it with add_chat() first")
        msg = self._new_message(chat, user.to_dict(), content)
        self._place(chat, msg, thread_id, {"message_id": reply_to} if reply_to else None)
        chat.messages[msg["message_id"]] = msg
        return self._public(msg)

    def _check_markup(self, markup: Any) -> JSON | None:
        if markup is None:
            return None
        if not isinstance(markup, dict):
            raise _bad("can't parse reply keyboard markup JSON object")
        if "inline_keyboard" not in markup:
            return markup
        for button in _buttons(markup):
            if not button.get("text"):
                raise _bad("can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard")
            data = button.get("callback_data")
            if data is not None and not 1 <= len(str(data).encode()) <= 64:
                raise _bad("BUTTON_DATA_INVALID")
            if len(button) == 1:
                raise _bad("can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard")
        return markup if _buttons(markup) else None  # an empty inline keyboard means "no keyboard"

    def _send(self, p: JSON, content: JSON) -> JSON:
        """Create a bot message in p["chat_id"] with the common send options applied."""
        chat = self._target_chat(p)
        markup = self._check_markup(p.get("reply_markup"))
        msg = self._new_message(chat, self.bot_user, content)
        reply = p.get("reply_parameters")
        if reply is None and p.get("reply_to_message_id") is not None:
            reply = {"message_id": p["reply_to_message_id"],
                     "allow_sending_without_reply": p.get("allow_sending_without_reply")}
        self._place(chat, msg, p.get("message_thread_id"), reply)
        if markup is not None and "inline_keyboard" in markup:
            msg["reply_markup"] = markup
        elif markup is not None:
            msg["reply_keyboard"] = markup
            keeps = "keyboard" in markup  # ReplyKeyboardRemove and ForceReply hide the keyboard
            chat.reply_keyboard = markup if keeps else None
        chat.messages[msg["message_id"]] = msg
        self._notify(msg)
        return self._public(msg)

    def _notify(self, msg: JSON) -> None:
        snapshot = copy.deepcopy(msg)
        self.bot_log.append(snapshot)
        self._bot_event.set()
        self._bot_event = asyncio.Event()
        for listener in list(self.on_bot_message):
            try:
                listener(copy.deepcopy(snapshot))
            except Exception:  # a broken printer must not turn into an API error
                log.exception("on_bot_message listener failed")

    def _wake_pollers(self) -> None:
        self._wakeup.set()
        self._wakeup = asyncio.Event()

    def _editable(self, p: JSON) -> tuple[_Chat, JSON]:
        if p.get("inline_message_id"):
            raise _bad("inline messages are not supported by the fake")
        chat = self._chat_by_id(p.get("chat_id"))
        msg = chat.messages.get(_int(p.get("message_id")))
        if msg is None:
            raise _bad("message to edit not found")
        if msg["from"]["id"] != self.bot_id:
            raise _bad("message can't be edited")
        return chat, msg

    def _inline_markup(self, markup: Any) -> JSON | None:
        checked = self._check_markup(markup)
        if checked is not None and "inline_keyboard" not in checked:
            raise _bad("inline keyboard expected")
        return checked

    def _apply_edit(self, chat: _Chat, msg: JSON, changes: JSON) -> JSON:
        if all(msg.get(key) == value for key, value in changes.items()):
            raise _bad(NOT_MODIFIED)
        for key, value in changes.items():
            if value is None:
                msg.pop(key, None)
            else:
                msg[key] = value
        msg["edit_date"] = int(self.clock())
        chat.edits[msg["message_id"]] = chat.edits.get(msg["message_id"], 0) + 1
        self._notify(msg)
        return self._public(msg)

    def _invoice(self, chat_id: int, message_id: int) -> JSON:
        invoice = self._invoices.get((chat_id, message_id))
        if invoice is None:
            raise LookupError(f"no invoice message {message_id} in chat {chat_id}")
        return invoice

    def _topic(self, p: JSON) -> tuple[_Chat, JSON]:
        chat = self._chat_by_id(p.get("chat_id"))
        if not chat.is_forum:
            raise _bad("the chat is not a forum")
        topic = chat.topics.get(_int(p.get("message_thread_id")))
        if topic is None:
            raise _bad("message thread not found")
        return chat, topic

    @staticmethod
    def _commands_key(scope: JSON | None, language_code: Any) -> str:
        return json.dumps(scope or {"type": "default"}, sort_keys=True) + "|" + _text(language_code)

    # --- method handlers -----------------------------------------------------------------------

    def _get_me(self, p: JSON) -> JSON:
        return {**self.bot_user, "can_join_groups": True, "can_read_all_group_messages": False,
                "supports_inline_queries": False}

    async def _get_updates(self, p: JSON) -> list[JSON]:
        if self.webhook_url:
            raise FakeApiError(409, "Conflict: can't use getUpdates method while webhook is active; "
                                    "use deleteWebhook to delete the webhook first")
        offset, limit = _int(p.get("offset")), min(max(_int(p.get("limit"), 100), 1), 100)
        timeout = min(max(float(p.get("timeout") or 0), 0.0), MAX_POLL_SECONDS)
        if isinstance(p.get("allowed_updates"), list):
            self._allowed_updates = p["allowed_updates"] or None  # [] means "all types"
        # A newer getUpdates ends an older waiting one with 409, as Telegram does.
        self._poll_generation += 1
        generation, releases = self._poll_generation, self._releases
        self._wake_pollers()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            if offset > 0:
                self._pending = [u for u in self._pending if u["update_id"] >= offset]
            elif offset < 0:
                self._pending = self._pending[offset:]
            if self._allowed_updates:
                self._pending = [u for u in self._pending if _update_type(u) in self._allowed_updates]
            remaining = deadline - loop.time()
            if self._pending or self._closed or remaining <= 0:
                return copy.deepcopy(self._pending[:limit])
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), remaining)
            if releases != self._releases:
                return []
            if generation != self._poll_generation:
                raise FakeApiError(409, DEFAULT_DESCRIPTIONS[409])

    def _set_webhook(self, p: JSON) -> bool:
        self.webhook_url = _text(p.get("url"))
        return True

    def _delete_webhook(self, p: JSON) -> bool:
        self.webhook_url = ""
        if _bool(p.get("drop_pending_updates")):
            self._pending.clear()
        return True

    def _get_webhook_info(self, p: JSON) -> JSON:
        return {"url": self.webhook_url, "has_custom_certificate": False, "pending_update_count": len(self._pending)}

    def _set_my_commands(self, p: JSON) -> bool:
        self.commands[self._commands_key(p.get("scope"), p.get("language_code"))] = list(p.get("commands") or [])
        return True

    def _delete_my_commands(self, p: JSON) -> bool:
        self.commands.pop(self._commands_key(p.get("scope"), p.get("language_code")), None)
        return True

    def _get_my_commands(self, p: JSON) -> list[JSON]:
        return self.my_commands(p.get("scope"), _text(p.get("language_code"))) or []

    def _send_message(self, p: JSON) -> JSON:
        text = _text(p.get("text"))
        if not text.strip():
            raise _bad("message text is empty")
        if len(text) > 4096:
            raise _bad("message is too long")
        return self._send(p, {"text": text})

    def _edit_message_text(self, p: JSON) -> JSON:
        chat, msg = self._editable(p)
        text = _text(p.get("text"))
        if not text.strip():
            raise _bad("message text is empty")
        if "text" not in msg:
            raise _bad("there is no text in the message to edit")
        # Telegram drops the inline keyboard when an edit does not repeat it.
        return self._apply_edit(chat, msg, {"text": text, "reply_markup": self._inline_markup(p.get("reply_markup"))})

    def _edit_message_caption(self, p: JSON) -> JSON:
        chat, msg = self._editable(p)
        if "text" in msg:
            raise _bad("there is no caption in the message to edit")
        changes = {"caption": _text(p.get("caption")) or None, "reply_markup": self._inline_markup(p.get("reply_markup"))}
        return self._apply_edit(chat, msg, changes)

    def _edit_message_reply_markup(self, p: JSON) -> JSON:
        chat, msg = self._editable(p)
        return self._apply_edit(chat, msg, {"reply_markup": self._inline_markup(p.get("reply_markup"))})

    def _delete_message(self, p: JSON) -> bool:
        chat = self._chat_by_id(p.get("chat_id"))
        if chat.messages.pop(_int(p.get("message_id")), None) is None:
            raise _bad("message to delete not found")
        return True

    def _answer_callback_query(self, p: JSON) -> bool:
        query_id = _text(p.get("callback_query_id"))
        if query_id not in self._open_callbacks:
            raise _bad(QUERY_TOO_OLD)
        self._open_callbacks.discard(query_id)
        answer: JSON = {k: _text(p[k]) for k in ("text", "url") if p.get(k) is not None}
        if p.get("show_alert") is not None:
            answer["show_alert"] = _bool(p["show_alert"])
        if p.get("cache_time") is not None:
            answer["cache_time"] = _int(p["cache_time"])
        self.callback_answers[query_id] = answer
        return True

    def _send_invoice(self, p: JSON) -> JSON:
        payload = _text(p.get("payload"))
        if not 1 <= len(payload.encode()) <= 128:
            raise _bad("INVOICE_PAYLOAD_INVALID")
        prices = list(p.get("prices") or [])
        total = sum(_int(price.get("amount")) for price in prices)
        if not prices or total <= 0:
            raise _bad("CURRENCY_TOTAL_AMOUNT_INVALID")
        if _text(p.get("currency")) == "XTR":  # Telegram Stars: no provider, exactly one price
            if _text(p.get("provider_token")):
                raise _bad("PROVIDER_TOKEN_INVALID")
            if len(prices) != 1:
                raise _bad("STARS_INVOICE_INVALID")
        invoice = {
            "title": _text(p.get("title")),
            "description": _text(p.get("description")),
            "start_parameter": _text(p.get("start_parameter")),
            "currency": _text(p.get("currency")),
            "total_amount": total,
        }
        msg = self._send(p, {"invoice": invoice})
        record = {**copy.deepcopy(p), "message_id": msg["message_id"], "total_amount": total}
        self._invoices[(msg["chat"]["id"], msg["message_id"])] = record
        return msg

    def _refund_star_payment(self, p: JSON) -> bool:
        charge = self.star_charges.get(_text(p.get("telegram_payment_charge_id")))
        if charge is None or charge["user_id"] != _int(p.get("user_id")):
            raise _bad("CHARGE_ID_INVALID")
        if charge["refunded"]:
            raise _bad("CHARGE_ALREADY_REFUNDED")
        charge["refunded"] = True
        return True

    def _answer_pre_checkout_query(self, p: JSON) -> bool:
        query_id = _text(p.get("pre_checkout_query_id"))
        if query_id not in self._open_pre_checkouts:
            raise _bad(QUERY_TOO_OLD)
        self._open_pre_checkouts.discard(query_id)
        answer: JSON = {"ok": _bool(p.get("ok"))}
        if p.get("error_message"):
            answer["error_message"] = _text(p["error_message"])
        self.pre_checkout_answers[query_id] = answer
        return True

    def _send_chat_action(self, p: JSON) -> bool:
        self._target_chat(p)
        return True

    def _create_forum_topic(self, p: JSON) -> JSON:
        chat = self._chat_by_id(p.get("chat_id"))
        if not chat.is_forum:
            raise _bad("the chat is not a forum")
        topic: JSON = {"name": _text(p.get("name")), "icon_color": _int(p.get("icon_color"), 0x6FB9F0)}
        if p.get("icon_custom_emoji_id"):
            topic["icon_custom_emoji_id"] = p["icon_custom_emoji_id"]
        # The topic id is the id of its "topic created" service message.
        service = self._new_message(chat, self.bot_user, {"forum_topic_created": copy.deepcopy(topic)})
        thread_id = service["message_id"]
        service.update(message_thread_id=thread_id, is_topic_message=True)
        chat.messages[thread_id] = service
        chat.topics[thread_id] = {"message_thread_id": thread_id, **topic, "is_closed": False}
        return {"message_thread_id": thread_id, **topic}

    def _edit_forum_topic(self, p: JSON) -> bool:
        _, topic = self._topic(p)
        changes = {k: p[k] for k in ("name", "icon_custom_emoji_id") if p.get(k) is not None}
        if all(topic.get(k) == v for k, v in changes.items()):
            raise _bad("TOPIC_NOT_MODIFIED")
        topic.update(changes)
        return True

    def _set_topic_closed(self, p: JSON, closed: bool) -> bool:
        _, topic = self._topic(p)
        if topic["is_closed"] == closed:
            raise _bad("TOPIC_NOT_MODIFIED")
        topic["is_closed"] = closed
        return True

    def _delete_forum_topic(self, p: JSON) -> bool:
        chat, topic = self._topic(p)
        thread_id = topic["message_thread_id"]
        del chat.topics[thread_id]
        chat.messages = {mid: m for mid, m in chat.messages.items() if m.get("message_thread_id") != thread_id}
        return True

    def _unpin_chat_message(self, p: JSON) -> bool:
        """Unpin one message (message_id), or the most recent pin without one, as Telegram does."""
        chat = self._chat_by_id(p.get("chat_id"))
        if p.get("message_id") is not None:
            message_id = _int(p.get("message_id"))
            if message_id not in chat.pinned:
                raise _bad("message to unpin not found")
            chat.pinned.remove(message_id)
        elif chat.pinned:
            chat.pinned.pop()
        return True

    def _get_chat(self, p: JSON) -> JSON:
        """ChatFullInfo, as far as the fake knows the chat (type, title, is_forum)."""
        chat = self._chat_by_id(p.get("chat_id"))
        return {**copy.deepcopy(chat.info), "accent_color_id": 0, "max_reaction_count": 11,
                "accepted_gift_types": {"unlimited_gifts": False, "limited_gifts": False,
                                        "unique_gifts": False, "premium_subscription": False,
                                        "gifts_from_channels": False}}

    def _leave_chat(self, p: JSON) -> bool:
        chat = self._chat_by_id(p.get("chat_id"))
        if chat.info.get("type") == "private":
            raise _bad("chat member status can't be changed in private chats")
        self.left.add(chat.info["id"])
        return True

    def _get_chat_member(self, p: JSON) -> JSON:
        """The bot is an administrator (topics included) of every group it is in; people are
        members of the groups they wrote in, and of their private chat."""
        chat = self._chat_by_id(p.get("chat_id"))
        user_id = _int(p.get("user_id"))
        if user_id == self.bot_id:
            rights = ("can_manage_chat", "can_delete_messages", "can_manage_video_chats", "can_restrict_members",
                      "can_change_info", "can_invite_users", "can_post_stories", "can_edit_stories",
                      "can_delete_stories", "can_pin_messages", "can_manage_topics", "can_send_welcome_messages")
            status = "member" if chat.info.get("type") == "private" else "administrator"
            member: JSON = {"status": status, "user": {**self.bot_user}}
            if status == "administrator":
                member.update({"can_be_edited": False, "is_anonymous": False, "can_promote_members": False,
                               **dict.fromkeys(rights, True)})
            return member
        sender = next((m["from"] for m in chat.messages.values() if m["from"]["id"] == user_id), None)
        if sender is None and chat.info["id"] != user_id:
            raise _bad("user not found")
        user = sender or {"id": user_id, "is_bot": False, "first_name": chat.info.get("first_name", "?")}
        return {"status": "member", "user": copy.deepcopy(user)}

    def _pin_chat_message(self, p: JSON) -> bool:
        chat = self._chat_by_id(p.get("chat_id"))
        message_id = _int(p.get("message_id"))
        if message_id not in chat.messages:
            raise _bad("message to pin not found")
        chat.pinned.append(message_id)
        return True

    def _copy_message(self, p: JSON) -> JSON:
        source_chat = self._chat_by_id(p.get("from_chat_id"))
        source = source_chat.messages.get(_int(p.get("message_id")))
        if source is None:
            raise _bad("message to copy not found")
        content = {k: copy.deepcopy(source[k]) for k in CONTENT_KEYS if k in source}
        if not content:
            raise _bad("the message can't be copied")
        if p.get("caption") is not None and "text" not in content:
            content["caption"] = _text(p["caption"])
        return {"message_id": self._send(p, content)["message_id"]}

    def _media_handler(self, kind: str) -> Callable[[JSON], JSON]:
        def send(p: JSON) -> JSON:
            if not p.get(kind):
                raise _bad(f"there is no {kind} in the request")
            content: JSON = {kind: _media(kind, _file_id(p[kind], kind))}
            if p.get("caption"):
                content["caption"] = _text(p["caption"])
            return self._send(p, content)

        return send


class FakeTelegramSession(BaseSession):
    """An aiogram session that executes requests on a FakeTelegram instead of the network."""

    def __init__(self, fake: FakeTelegram, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.fake = fake
        self.closed = False

    def build_params(self, bot: Bot, method: TelegramMethod[Any]) -> JSON:
        """Like AiohttpSession.build_form_data (defaults from bot.default resolved, None dropped),
        but nested values stay Python objects instead of JSON strings."""
        files: dict[str, Any] = {}
        params: JSON = {}
        for key, value in method.model_dump(warnings=False).items():
            prepared = self.prepare_value(value, bot=bot, files=files, _dumps_json=False)
            if prepared is not None:
                params[key] = prepared
        return params

    async def make_request(
        self, bot: Bot, method: TelegramMethod[TelegramType], timeout: int | None = None
    ) -> TelegramType:
        try:
            result = await self.fake.call(method.__api_method__, self.build_params(bot, method))
            status, body = 200, {"ok": True, "result": result}
        except FakeApiError as error:
            status, body = error.error_code, error.to_response()
        # Going through check_response makes aiogram raise its real exception classes.
        response = self.check_response(bot=bot, method=method, status_code=status, content=self.json_dumps(body))
        return cast("TelegramType", response.result)

    async def close(self) -> None:
        self.closed = True

    async def stream_content(
        self,
        url: str,
        headers: dict[str, Any] | None = None,
        timeout: int = 30,
        chunk_size: int = 65536,
        raise_for_status: bool = True,
    ) -> AsyncGenerator[bytes, None]:
        raise NotImplementedError("FakeTelegram serves no files")
        yield b""  # pragma: no cover - makes this an async generator


def sign_init_data(fields: dict[str, str], bot_token: str) -> str:
    """The hash Telegram puts in a Mini App's initData for these fields, as Telegram computes it
    (tests build initData with it; the bot checks it with aiogram's check_webapp_signature)."""
    check = "\n".join(f"{k}={v}" for k, v in sorted(fields.items()))
    secret = hmac.new(b"WebAppData", bot_token.encode(), hashlib.sha256).digest()
    return hmac.new(secret, check.encode(), hashlib.sha256).hexdigest()
