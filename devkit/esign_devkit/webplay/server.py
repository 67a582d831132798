"""The browser playground's server: the production dispatcher on the fake Telegram, behind a JSON API
that one static page (devkit/esign_devkit/webplay/static/) polls and drives.

    python -m bot playground --web [--port 8000]      (or python -m esign_devkit.webplay --host 0.0.0.0)

Everything the page shows is read back from the fake Telegram of the tests
(devkit/esign_devkit/testing/fake_telegram.py): the chats' current messages (edits applied), reply keyboards,
invoices, forum topics. Everything the page does is an update built by that module's update
builders and fed to `bot.app.build_dispatcher` — the wiring production and the tests use.

The API (JSON in, JSON out; POST bodies must be `application/json`):

    GET  /api/state?since=V&boot=B   the whole picture; waits (long poll) until it differs from V
    POST /api/buyers                 {name?, lang?, phone?}                  a new buyer (private chat)
    POST /api/agents                 {name?}                                 a new agent (staff group)
    POST /api/chats/{chat}/send      {user?, text, thread_id?, reply_to?}    type a message
    POST /api/chats/{chat}/press     {user?, message_id, data}               press an inline button
    POST /api/chats/{chat}/contact   {user?, phone?, own?}                   share a phone (private chat)
    POST /api/chats/{chat}/pay       {user?, message_id}                     pay an invoice (private chat)
    POST /api/chats/{chat}/media     {user?, kind, caption?, thread_id?}     a photo or a document
    POST /api/chats/{chat}/edit      {user?, message_id, text}               edit one's own message

`user` defaults to the buyer of a private chat; in a group it is an agent's id.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
import re
import secrets
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from aiogram.fsm.storage.base import StorageKey
from aiogram.types import Update
from aiohttp import web
from redis.asyncio import Redis

from bot.app import build_context, build_dispatcher
from bot.cli.admin import seed_demo
from bot.context import AppContext
from config.settings import Settings
from esign_devkit.playground_env import free_port, generous_codes, is_port_free
from esign_devkit.testing.fake_telegram import FakeApiError, FakeTelegram, FakeUser, fresh_update_id
from esign_devkit.testing.fake_wechat_pay import FakeWechatPay
from esign_devkit.webplay.providers import add_scan_page, start_provider
from services.catalog import CatalogError, format_fen
from services.clock import Clock, SystemClock
from services.phones import mask_phone
from services.sms import ConsoleSms

log = logging.getLogger(__name__)

STATIC = Path(__file__).with_name("static")
FIRST_BUYER_ID = 10001  # the terminal playground's default user: both see the same conversation
FIRST_AGENT_ID = 20001
# The staff group of the playground, a forum supergroup of the fake Telegram. The hand-off
# reads STAFF_CHAT_ID; when the setting exists and is empty, the playground fills it in.
PLAYGROUND_STAFF_CHAT_ID = -1001000000777
STAFF_TITLE = "腾讯电子签 · 客服群"
POLL_SECONDS = 25.0
BUYER_NAMES = {"zh": ["张伟", "李娜", "王芳", "刘洋", "陈静", "杨磊", "赵敏", "黄强"],
               "en": ["Alice", "Bob", "Carol", "Dave", "Erin", "Frank", "Grace", "Heidi"]}
AGENT_NAMES = ["客服小李", "客服小王", "客服小陈", "客服小周"]
MEDIA_KINDS = ("photo", "document")
BEIJING = ZoneInfo("Asia/Shanghai")
_CODE = re.compile(r"(?<!\d)\d{6}(?!\d)")  # as ConsoleSms.last_code reads codes

JSON = dict[str, Any]


class ApiError(Exception):
    """A request the playground refuses: `status` is the HTTP status, the message is shown."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def staff_chat_id_of(settings: Settings) -> int | None:
    """The staff group the bot posts to (STAFF_CHAT_ID), when this build has the hand-off."""
    value = getattr(settings, "staff_chat_id", None)
    return int(value) if value else None


def with_playground_staff_chat(settings: Settings) -> Settings:
    """Settings whose staff group is the playground's forum, when the bot has a staff group
    setting and it is empty (a real group id from the environment is kept: the page shows it)."""
    if "staff_chat_id" in type(settings).model_fields and not getattr(settings, "staff_chat_id", None):
        return settings.model_copy(update={"staff_chat_id": PLAYGROUND_STAFF_CHAT_ID})
    return settings


@dataclass
class Person:
    user: FakeUser
    lang: str  # "zh" or "en": the language of their Telegram

    @property
    def id(self) -> int:
        return self.user.id

    @property
    def name(self) -> str:
        return self.user.first_name


class WebPlayground:
    """The world behind the page: the fake Telegram, the dispatcher, the buyers and the agents."""

    def __init__(
        self,
        app: AppContext,
        *,
        telegram: FakeTelegram | None = None,
        staff_chat_id: int | None = None,
        info: JSON | None = None,
    ) -> None:
        self.app = app
        self.telegram = telegram or FakeTelegram(first_update_id=fresh_update_id())
        self.bot = self.telegram.make_bot()
        self.dp = build_dispatcher(app, self.bot)
        self.info: JSON = dict(info or {})
        self.boot = secrets.token_hex(4)
        self.buyers: dict[int, Person] = {}
        self.agents: dict[int, Person] = {}
        self.paid: set[tuple[int, int]] = set()  # (chat id, invoice message id) paid here
        self.introduced: set[int] = set()  # agents whose alias is set
        self.errors: list[str] = []
        self.version = 0
        self._changed = asyncio.Event()
        self._closed = False
        self.staff_chat_id = staff_chat_id
        self.groups: list[int] = []  # group chats, the staff group first
        if staff_chat_id is not None:
            self.telegram.add_chat(staff_chat_id, type="supergroup", title=STAFF_TITLE, is_forum=True)
            self.groups.append(staff_chat_id)
            self.add_agent()
        self.telegram.on_bot_message.append(self._on_bot_message)

    @classmethod
    async def create(
        cls,
        settings: Settings,
        redis: Redis,
        *,
        clock: Clock | None = None,
        lang: str = "zh",
        first_user_id: int = FIRST_BUYER_ID,
        store: str = "",
    ) -> WebPlayground:
        """The playground on this Redis: the composition root's services with the console SMS
        (the page shows its outbox), the demo enterprise, and one buyer with the demo phone."""
        settings = with_playground_staff_chat(settings)
        clock = clock or SystemClock()
        app = build_context(settings, redis, clock=clock, sms=ConsoleSms(clock))

        app.codes.policy = generous_codes(app.codes.policy)
        enterprise, phone = await seed_demo(app.enterprises)
        info = {"store": store, "demo_enterprise": enterprise.name, "demo_enterprise_id": enterprise.id,
                "demo_phone": phone, "bot_name": "E-Sign Bot"}
        playground = cls(app, staff_chat_id=staff_chat_id_of(settings), info=info)
        playground.info["bot_username"] = playground.telegram.username
        playground.add_buyer(lang=lang, phone=phone, user_id=first_user_id)
        return playground

    @property
    def has_desk(self) -> bool:
        """Whether the bot's help desk (the support service that works the staff group)
        is in this build; without it nothing ever posts in the group."""
        return getattr(self.app, "support", None) is not None

    # --- people ----------------------------------------------------------------------------------

    def add_buyer(self, *, name: str | None = None, lang: str = "zh", phone: str | None = None,
                  user_id: int | None = None) -> Person:
        lang = "en" if lang == "en" else "zh"
        name, phone = _text_or_none(name, "name"), _text_or_none(phone, "phone")
        uid = user_id or max([FIRST_BUYER_ID - 1, *self.buyers]) + 1
        if uid in self.buyers or uid in self.agents:
            raise ApiError(409, f"user {uid} exists already")
        names = BUYER_NAMES[lang]
        same_lang = sum(1 for person in self.buyers.values() if person.lang == lang)
        name = (name or "").strip()[:32] or names[same_lang % len(names)]
        phone = (phone or "").strip() or f"+86139{uid % 100_000_000:08d}"
        user = FakeUser(id=uid, first_name=name, phone=phone, language_code="en" if lang == "en" else "zh-hans")
        self.telegram.register_user(user)
        self.buyers[uid] = Person(user, lang)
        self._bump()
        return self.buyers[uid]

    def add_agent(self, *, name: str | None = None) -> Person:
        if self.staff_chat_id is None:
            raise ApiError(409, "the bot has no staff group: agents have nowhere to work")
        uid = max([FIRST_AGENT_ID - 1, *self.agents]) + 1
        name = (_text_or_none(name, "name") or "").strip()[:32] or AGENT_NAMES[len(self.agents) % len(AGENT_NAMES)]
        self.agents[uid] = Person(FakeUser(id=uid, first_name=name, language_code="zh-hans"), "zh")
        self._bump()
        return self.agents[uid]

    def _actor(self, chat_id: int, user_id: Any) -> FakeUser:
        """Who acts in this chat: the buyer of a private chat, an agent in a group."""
        if chat_id in self.buyers:
            if user_id not in (None, "", chat_id):
                raise ApiError(403, "only the buyer can write in their own chat")
            return self.buyers[chat_id].user
        if chat_id in self.groups:
            agent = self.agents.get(_as_int(user_id, "user"))
            if agent is None:
                raise ApiError(404, f"no agent {user_id}")
            return agent.user
        raise ApiError(404, f"no chat {chat_id}")

    # --- changes and waiting -----------------------------------------------------------------------

    def _bump(self) -> None:
        self.version += 1
        self._changed.set()
        self._changed = asyncio.Event()  # replaced, so each waiter sees the set() meant for it

    def _on_bot_message(self, message: JSON) -> None:
        chat = message.get("chat") or {}
        if chat.get("type") != "private" and chat.get("id") not in self.groups:
            self.groups.append(chat["id"])  # a group the bot posts to: shown next to the staff group
        self._bump()

    async def wait_for_change(self, since: int, timeout: float) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while self.version <= since and not self._closed:
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                return
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except TimeoutError:
                return

    async def close(self) -> None:
        """Release the long polls and close the bot's session."""
        self._closed = True
        self._bump()
        await self.bot.session.close()

    # --- feeding the dispatcher --------------------------------------------------------------------

    async def _introduce(self, update: Update) -> None:
        """An agent of the page is seen by customers under the name the page gives them (客服小李):
        their alias, set on their first act as an agent would with /alias (which can change it)."""
        event = update.message or update.edited_message or update.callback_query
        who = event.from_user if event is not None else None
        if who is None or who.id not in self.agents or who.id in self.introduced or not self.has_desk:
            return
        self.introduced.add(who.id)
        name = self.agents[who.id].name
        await self.app.support.set_alias(who.id, name[:20], name=name)

    async def feed(self, update: Update) -> str | None:
        """Feed one update to the production dispatcher; returns an error text if it raised."""
        try:
            await self._introduce(update)
            await self.dp.feed_update(self.bot, update)
            return None
        except Exception as exc:  # the page must go on; the error shows as a red notice
            log.exception("webplay.update_failed update_id=%s", update.update_id)
            error = f"{type(exc).__name__}: {exc}"
            self.errors = [*self.errors[-19:], error]
            return error
        finally:
            self._bump()

    @staticmethod
    def _built(build: Any, *args: Any, **kwargs: Any) -> Update:
        """Call an update builder; the fake's refusals become a 400 with Telegram's wording."""
        try:
            return build(*args, **kwargs)
        except FakeApiError as exc:
            raise ApiError(400, exc.description) from None
        except LookupError as exc:
            raise ApiError(404, str(exc)) from None

    async def send_text(self, chat_id: int, user_id: Any, text: Any, *, thread_id: Any = None,
                        reply_to: Any = None) -> JSON:
        user = self._actor(chat_id, user_id)
        text = text if isinstance(text, str) else ""
        if not text.strip():
            raise ApiError(400, "the message is empty")
        if len(text) > 4096:
            raise ApiError(400, "the message is too long (4096 characters at most)")
        update = self._built(self.telegram.message_update, user, text, chat_id=chat_id,
                             message_thread_id=self._thread(chat_id, thread_id),
                             reply_to_message_id=_as_int(reply_to, "reply_to") if reply_to else None)
        return {"error": await self.feed(update)}

    async def send_media(self, chat_id: int, user_id: Any, kind: Any, caption: Any = None, *,
                         thread_id: Any = None) -> JSON:
        user = self._actor(chat_id, user_id)
        if kind not in MEDIA_KINDS:
            raise ApiError(400, f"kind must be one of {', '.join(MEDIA_KINDS)}")
        caption = caption.strip() if isinstance(caption, str) and caption.strip() else None
        update = self._built(self.telegram.message_update, user, caption, chat_id=chat_id,
                             message_thread_id=self._thread(chat_id, thread_id),
                             **{kind: f"{kind}-{secrets.token_hex(6)}"})
        return {"error": await self.feed(update)}

    async def edit(self, chat_id: int, user_id: Any, message_id: Any, text: Any) -> JSON:
        user = self._actor(chat_id, user_id)
        mid = _as_int(message_id, "message_id")
        message = self.telegram.message(chat_id, mid)
        if message is None or message["from"]["id"] != user.id:
            raise ApiError(400, "one can only edit one's own messages")
        if not isinstance(text, str) or not text.strip():
            raise ApiError(400, "the message is empty")
        update = self._built(self.telegram.edited_message_update, user, mid, text, chat_id=chat_id)
        return {"error": await self.feed(update)}

    async def press(self, chat_id: int, user_id: Any, message_id: Any, data: Any) -> JSON:
        """Press an inline button; returns the bot's answer (its notice, if any)."""
        user = self._actor(chat_id, user_id)
        if not isinstance(data, str) or not data:
            raise ApiError(400, "data: the button's callback_data is required")
        update = self._built(self.telegram.callback_update, user, _as_int(message_id, "message_id"), data, chat_id)
        error = await self.feed(update)
        answer = self.telegram.callback_answer(update.callback_query.id)
        return {"error": error, "answered": answer is not None, "notice": (answer or {}).get("text"),
                "alert": bool((answer or {}).get("show_alert"))}

    async def share_contact(self, chat_id: int, user_id: Any, phone: Any = None, *, own: Any = True) -> JSON:
        user = self._actor(chat_id, user_id)
        if chat_id not in self.buyers:
            raise ApiError(400, "a phone is shared in the private chat with the bot")
        phone = phone.strip() if isinstance(phone, str) and phone.strip() else user.phone
        if not phone or len(phone) > 32:
            raise ApiError(400, "a phone number is required")
        update = self._built(self.telegram.contact_update, user, phone, own=own is not False)
        return {"error": await self.feed(update)}

    async def pay(self, chat_id: int, user_id: Any, message_id: Any) -> JSON:
        """Pay an invoice as Telegram does: the pre-checkout query first, the payment only if the
        bot said yes. Returns {"ok": True, "amount"} or {"ok": False, "error": the bot's reason}."""
        user = self._actor(chat_id, user_id)
        mid = _as_int(message_id, "message_id")
        invoice = next((i for i in self.telegram.invoices(chat_id) if i["message_id"] == mid), None)
        if invoice is None:
            raise ApiError(404, f"no invoice {mid} in this chat")
        if (chat_id, mid) in self.paid:
            raise ApiError(409, "this invoice is paid already")
        query = self._built(self.telegram.pre_checkout_update, user, mid)
        error = await self.feed(query)
        answer = self.telegram.pre_checkout_answer(query.pre_checkout_query.id)
        if not answer:
            return {"ok": False, "error": error or "the bot did not answer the pre-checkout query"}
        if not answer.get("ok"):
            return {"ok": False, "error": answer.get("error_message") or "the bot refused the payment"}
        error = await self.feed(self._built(self.telegram.successful_payment_update, user, mid))
        self.paid.add((chat_id, mid))
        self._bump()
        return {"ok": True, "error": error, "amount": _money(invoice["total_amount"], invoice.get("currency"))}

    def _thread(self, chat_id: int, thread_id: Any) -> int | None:
        if thread_id in (None, "", 0):
            return None
        if chat_id in self.buyers:
            raise ApiError(400, "private chats have no topics")
        return _as_int(thread_id, "thread_id")

    # --- the picture ------------------------------------------------------------------------------

    async def snapshot(self) -> JSON:
        """Everything the page shows, as plain JSON."""
        return {
            "version": self.version,
            "boot": self.boot,
            "info": self.info,
            "buyers": [await self._buyer_view(person) for person in self.buyers.values()],
            "agents": [{"id": a.id, "name": a.name} for a in self.agents.values()],
            "staff": {"configured": self.staff_chat_id is not None, "chat_id": self.staff_chat_id,
                      "hand_off": "staff_chat_id" in type(self.app.settings).model_fields,
                      "desk": self.has_desk},
            "groups": [self._group_view(chat_id) for chat_id in self.groups],
            "sms": self._sms_view(),
            "enterprises": await self._enterprises_view(),
            "errors": self.errors[-5:],
        }

    async def _buyer_view(self, person: Person) -> JSON:
        uid = person.id
        keyboard = self.telegram.reply_keyboard(uid)
        try:
            state = await self.dp.storage.get_state(StorageKey(bot_id=self.bot.id, chat_id=uid, user_id=uid))
        except Exception:  # Redis away: the page still shows the chat
            state = "?"
        return {
            "id": uid,
            "name": person.name,
            "lang": person.lang,
            "phone": person.user.phone,
            "phone_masked": mask_phone(person.user.phone or ""),
            "state": state,
            "messages": [self._message_view(uid, m, set()) for m in self.telegram.messages(uid)],
            "keyboard": {
                "rows": [[{"text": b["text"], "request_contact": bool(b.get("request_contact"))} for b in row]
                         for row in keyboard.get("keyboard", [])],
                "placeholder": keyboard.get("input_field_placeholder") or "",
            } if keyboard else None,
        }

    def _group_view(self, chat_id: int) -> JSON:
        info = self.telegram.chat(chat_id) or {"id": chat_id, "title": str(chat_id)}
        pinned = set(self.telegram.pinned(chat_id))
        messages = [self._message_view(chat_id, m, pinned) for m in self.telegram.messages(chat_id)]
        topics = []
        for thread_id, topic in sorted(self.telegram.topics(chat_id).items()):
            in_topic = [m for m in messages if m["thread"] == thread_id and not m.get("topic_created")]
            topics.append({"id": thread_id, "name": topic.get("name", ""), "color": topic.get("icon_color"),
                           "closed": bool(topic.get("is_closed")), "count": len(in_topic),
                           "last": _preview(in_topic[-1]) if in_topic else "",
                           "last_id": in_topic[-1]["id"] if in_topic else thread_id})
        return {"id": chat_id, "title": info.get("title", ""), "forum": bool(info.get("is_forum")),
                "staff": chat_id == self.staff_chat_id, "topics": topics, "messages": messages}

    def _message_view(self, chat_id: int, msg: JSON, pinned: set[int]) -> JSON:
        sender = msg.get("from") or {}
        view: JSON = {
            "id": msg["message_id"],
            "date": msg.get("date", 0),
            "from_bot": sender.get("id") == self.telegram.bot_id,
            "sender": {"id": sender.get("id"), "name": _full_name(sender)},
            "edited": bool(msg.get("edit_date")),
            "thread": msg.get("message_thread_id") if msg.get("is_topic_message") else None,
            "pinned": msg["message_id"] in pinned,
        }
        if "text" in msg or "caption" in msg:
            view["text"] = msg.get("text", msg.get("caption", ""))
        for kind in ("photo", "document", "voice", "video", "sticker"):
            if kind in msg:
                view["media"] = kind
                if kind == "document":
                    view["file_name"] = msg[kind].get("file_name", "")
        if "contact" in msg:
            contact = msg["contact"]
            view["contact"] = {"phone": contact.get("phone_number", ""), "name": _full_name(contact),
                               "own": contact.get("user_id") == sender.get("id")}
        if "invoice" in msg:
            inv = msg["invoice"]
            view["invoice"] = {"title": inv.get("title", ""), "description": inv.get("description", ""),
                               "amount": _money(inv.get("total_amount", 0), inv.get("currency")),
                               "currency": inv.get("currency", ""),
                               "paid": (chat_id, msg["message_id"]) in self.paid}
        if "successful_payment" in msg:
            payment = msg["successful_payment"]
            view["payment"] = {"amount": _money(payment.get("total_amount", 0), payment.get("currency"))}
        if "forum_topic_created" in msg:
            view["topic_created"] = msg["forum_topic_created"].get("name", "")
        reply = msg.get("reply_to_message")
        if reply and "forum_topic_created" not in reply:
            view["reply_to"] = {"id": reply.get("message_id"), "sender": _full_name(reply.get("from") or {}),
                                "text": _preview(self._message_view(chat_id, reply, set()))}
        rows = (msg.get("reply_markup") or {}).get("inline_keyboard") or []
        if rows:
            view["buttons"] = [[_button_view(b) for b in row] for row in rows]
        if not any(k in view for k in ("text", "media", "contact", "invoice", "payment", "topic_created")):
            view["unsupported"] = sorted(k for k in msg if k not in ("message_id", "from", "chat", "date"))
        return view

    def _sms_view(self) -> JSON:
        sms = self.app.sms
        if not isinstance(sms, ConsoleSms):
            return {"backend": type(sms).__name__, "items": []}
        owners = {p.user.phone: p for p in self.buyers.values()}
        items = []
        for sent in reversed(sms.outbox[-50:]):
            codes = _CODE.findall(sent.text)
            owner = owners.get(sent.phone)
            items.append({"to": mask_phone(sent.phone), "text": sent.text, "code": codes[-1] if codes else None,
                          "buyer": owner.name if owner else None, "buyer_id": owner.id if owner else None,
                          "at": sent.at.astimezone(BEIJING).strftime("%H:%M:%S")})
        return {"backend": "console", "items": items}

    async def _enterprises_view(self) -> list[JSON]:
        try:
            enterprises = await self.app.enterprises.all()
        except Exception:  # Redis away
            return []
        tr = self.app.texts.for_lang("zh")
        views = []
        for ent in enterprises:
            try:
                edition = tr(f"edition.{ent.edition}")
            except KeyError:
                edition = ent.edition
            views.append({"id": ent.id, "name": ent.name, "verified": ent.verified, "edition": edition,
                          "edition_code": ent.edition, "contracts_left": ent.contracts_left,
                          "expires": ent.expires_at.astimezone(BEIJING).strftime("%Y-%m-%d") if ent.expires_at else None,
                          "members": len(ent.members)})
        return views


def _button_view(button: JSON) -> JSON:
    """An inline button for the page: a callback, a link (url; a Mini App's web_app opens as a
    link too), text to copy, or a kind the playground cannot press (shown, disabled)."""
    view: JSON = {"text": button.get("text", "")}
    if "callback_data" in button:
        view["callback_data"] = button["callback_data"]
    elif "url" in button:
        view["url"] = button["url"]
    elif "web_app" in button:
        view["url"] = (button["web_app"] or {}).get("url", "")
        view["web_app"] = True
    elif "copy_text" in button:
        view["copy_text"] = (button["copy_text"] or {}).get("text", "")
    else:
        view["unsupported"] = next((k for k in button if k != "text"), "?")
    return view


def _text_or_none(value: Any, name: str) -> str | None:
    if value is not None and not isinstance(value, str):
        raise ApiError(400, f"{name} must be text")
    if value is not None and len(value) > 64:
        raise ApiError(400, f"{name} is too long")
    return value


def _as_int(value: Any, name: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ApiError(400, f"{name} must be a number") from None


def _full_name(person: JSON) -> str:
    return " ".join(p for p in (person.get("first_name"), person.get("last_name")) if p) or person.get("title", "")


def _money(amount: int, currency: str | None) -> str:
    return format_fen(int(amount)) if currency in (None, "CNY") else f"{int(amount) / 100:.2f} {currency}"


def _preview(view: JSON) -> str:
    if view.get("text"):
        return view["text"].splitlines()[0][:80]
    for key, label in (("media", "[{}]"), ("invoice", "[invoice]"), ("contact", "[contact]"), ("payment", "[payment]")):
        if view.get(key):
            return label.format(view[key]) if key == "media" else label
    return ""


# --- the web app ---------------------------------------------------------------------------------

PLAYGROUND = web.AppKey("playground", WebPlayground)


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=lambda obj: json.dumps(obj, ensure_ascii=False))


@web.middleware
async def _errors(request: web.Request, handler: Any) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as exc:
        return _json({"ok": False, "error": str(exc)}, status=exc.status)


async def _body(request: web.Request) -> JSON:
    # JSON only: a form post from another site cannot drive the playground (no CORS preflight here).
    if request.content_type != "application/json":
        raise ApiError(415, "send JSON (Content-Type: application/json)")
    try:
        body = await request.json()
    except ValueError:
        raise ApiError(400, "the body is not valid JSON") from None
    if not isinstance(body, dict):
        raise ApiError(400, "the body must be a JSON object")
    return body


async def _index(request: web.Request) -> web.StreamResponse:
    return web.FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})


async def _state(request: web.Request) -> web.Response:
    playground = request.app[PLAYGROUND]
    try:
        since = int(request.query.get("since", "-1"))
        wait = min(max(float(request.query.get("wait", POLL_SECONDS)), 0.0), 60.0)
    except ValueError:
        raise ApiError(400, "since and wait must be numbers") from None
    if since >= 0 and request.query.get("boot") in (None, playground.boot) and since <= playground.version:
        await playground.wait_for_change(since, wait)
    return _json(await playground.snapshot())


async def _add_buyer(request: web.Request) -> web.Response:
    body = await _body(request)
    person = request.app[PLAYGROUND].add_buyer(name=body.get("name"), lang=body.get("lang") or "zh",
                                               phone=body.get("phone"))
    return _json({"ok": True, "id": person.id, "name": person.name, "phone": person.user.phone})


async def _add_agent(request: web.Request) -> web.Response:
    body = await _body(request)
    person = request.app[PLAYGROUND].add_agent(name=body.get("name"))
    return _json({"ok": True, "id": person.id, "name": person.name})


async def _chat_action(request: web.Request) -> web.Response:
    playground = request.app[PLAYGROUND]
    chat_id = _as_int(request.match_info["chat"], "chat")
    action = request.match_info["action"]
    body = await _body(request)
    user = body.get("user")
    if action == "send":
        result = await playground.send_text(chat_id, user, body.get("text"), thread_id=body.get("thread_id"),
                                            reply_to=body.get("reply_to"))
    elif action == "press":
        result = await playground.press(chat_id, user, body.get("message_id"), body.get("data"))
    elif action == "contact":
        result = await playground.share_contact(chat_id, user, body.get("phone"), own=body.get("own", True))
    elif action == "pay":
        result = await playground.pay(chat_id, user, body.get("message_id"))
    elif action == "media":
        result = await playground.send_media(chat_id, user, body.get("kind"), body.get("caption"),
                                             thread_id=body.get("thread_id"))
    elif action == "edit":
        result = await playground.edit(chat_id, user, body.get("message_id"), body.get("text"))
    else:
        raise ApiError(404, f"no action {action}")
    return _json({"ok": True, **result, "version": playground.version})


def build_web_app(playground: WebPlayground) -> web.Application:
    """The page, its static files and the JSON API around one playground."""
    app = web.Application(middlewares=[_errors])
    app[PLAYGROUND] = playground
    app.router.add_get("/", _index)
    app.router.add_static("/static/", STATIC)
    app.router.add_get("/api/state", _state)
    app.router.add_post("/api/buyers", _add_buyer)
    app.router.add_post("/api/agents", _add_agent)
    app.router.add_post(r"/api/chats/{chat:-?\d+}/{action}", _chat_action)

    async def release_polls(_: web.Application) -> None:
        playground._closed = True
        playground._bump()

    app.on_shutdown.append(release_polls)
    return app


def checkout_web_app(playground: WebPlayground, chat_page: str | None = None) -> web.Application | None:
    """The web checkout's own app (bot/web, F12) on the playground's bot and dispatcher, so the
    chat's 网页端购买 links open a working checkout and a web payment shows up in the chat;
    None in a build without the web checkout. Its 返回聊天 goes to `chat_page` (the playground's
    page), never to a t.me bot of that name: the fake Telegram's bot is no real one."""
    try:
        from bot.web import build_web_app as build_checkout_app
        from bot.web.state import STATE
    except ImportError:
        return None
    checkout = build_checkout_app(playground.app, playground.bot, playground.dp)
    checkout[STATE].chat_page = chat_page or ""
    return checkout


def _start_jobs(playground: WebPlayground) -> asyncio.Task | None:
    """The background jobs (expiry, reminders: bot/runtime/jobs.py), as the terminal playground runs them;
    their messages show in the page like any other. None in a build without them."""
    try:
        from bot.runtime.jobs import start_background
    except ImportError:
        return None
    return start_background(playground.app, playground.bot, playground.dp["desk"])


def with_checkout_origin(settings: Settings, origin: str) -> Settings:
    """Checkout links (PUBLIC_BASE_URL) pointing at the checkout the playground serves itself."""
    if "public_base_url" in type(settings).model_fields:
        return settings.model_copy(update={"public_base_url": origin})
    return settings


def checkout_port_for(settings: Settings, host: str, page_port: int) -> int:
    """Where the web checkout (when this build has it) listens, and so where its links point:
    WEB_PORT when it is set, else the port after the page's (a free one when that is taken)."""
    if "web_port" in settings.model_fields_set:
        return settings.web_port

    return page_port + 1 if page_port and is_port_free(host, page_port + 1) else free_port(host)



# --- the command -----------------------------------------------------------------------------------

async def serve(*, host: str, port: int, lang: str = "zh", user_id: int = FIRST_BUYER_ID,
                gateway: str = "sandbox") -> int:
    from bot.runtime.logs import setup_logging
    from bot.runtime.runner import StartupError, load_settings
    from esign_devkit.local_redis import open_redis

    settings = load_settings()
    setup_logging("WARNING")
    said: list[str] = []

    def say(text: str) -> None:
        said.append(text)
        print(text, flush=True)

    shown_host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    checkout_port = checkout_port_for(settings, host, port)
    settings = with_checkout_origin(settings, f"http://{shown_host}:{checkout_port}")
    settings, provider = await start_provider(gateway, settings)
    if provider is not None:
        say(f"Payments: a local {gateway} at {provider.base_url} (keys made now; the bot's real adapter talks to it)")
    redis = await open_redis(settings.redis_url, say)
    runners: list[web.AppRunner] = []
    playground: WebPlayground | None = None
    jobs: asyncio.Task | None = None

    async def listen(web_app: web.Application, listen_port: int, what: str) -> int:
        runner = web.AppRunner(web_app)
        await runner.setup()
        runners.append(runner)
        try:
            await web.TCPSite(runner, host, listen_port, shutdown_timeout=2).start()
        except OSError as exc:
            raise StartupError(f"cannot listen on {host}:{listen_port} for {what} ({exc.strerror}); "
                               "choose another port with --port") from None
        return int(runner.addresses[0][1])

    try:
        try:
            playground = await WebPlayground.create(settings, redis, lang=lang, first_user_id=user_id,
                                                    store=said[-1] if said else "")
        except CatalogError as exc:
            raise StartupError(str(exc)) from None
        info = playground.info
        say(f"Demo enterprise: {info['demo_enterprise']} (verified, id {info['demo_enterprise_id']})")
        say(f"Demo phone (its super admin): {info['demo_phone']} — the first buyer's own phone")
        if playground.staff_chat_id is None:
            say("Staff group: none (this build has no customer-service hand-off yet); the page says so.")
        elif not playground.has_desk:
            say(f"Staff group: the forum {playground.staff_chat_id}, but this build's bot has no help desk "
                "working it yet; the page says so.")
        else:
            say(f"Staff group: the fake Telegram's forum {playground.staff_chat_id} (agents write in it from the page)")
        jobs = _start_jobs(playground)
        checkout = checkout_web_app(playground, chat_page=f"http://{shown_host}:{port}/" if port else None)
        if checkout is not None:
            await listen(checkout, checkout_port, "the web checkout")
            info["checkout_url"] = f"http://{shown_host}:{checkout_port}/"
            say(f"Web checkout: {info['checkout_url']} (the chat's 网页端购买 links open there, in a new tab)")
        page = build_web_app(playground)
        if isinstance(provider, FakeWechatPay):
            add_scan_page(page, provider)
        bound_port = await listen(page, port, "the page")
        say(f"Browser playground: http://{shown_host}:{bound_port}/  (Ctrl+C stops it)")
        if isinstance(provider, FakeWechatPay):
            say(f"WeChat's 扫一扫: http://{shown_host}:{bound_port}/wechat/scan (pays a Native QR code as scanning it would)")
        await asyncio.Event().wait()
        return 0
    finally:
        if jobs is not None:
            from bot.runtime.jobs import stop_background

            await stop_background(jobs)
        for runner in reversed(runners):
            await runner.cleanup()
        if playground is not None:
            await playground.close()
        if provider is not None:
            await provider.close()
        await redis.aclose()


def main(args: argparse.Namespace) -> int:
    """`python -m bot playground --web`: args carry port, lang, user_id (and host, record)."""
    from bot.runtime.runner import StartupError

    if getattr(args, "record", None):
        print("error: --record works in the terminal playground (without --web)", file=sys.stderr)
        return 2
    try:
        return asyncio.run(serve(host=getattr(args, "host", None) or "127.0.0.1", port=args.port,
                                 lang=getattr(args, "lang", "zh"), user_id=getattr(args, "user_id", FIRST_BUYER_ID),
                                 gateway=getattr(args, "gateway", None) or "sandbox"))
    except StartupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0
