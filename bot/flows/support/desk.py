"""The Telegram side of the help desk, shared by the customer's and the staff group's handlers:
the customer's forum topic (created once, again after staff deleted it), the pinned intake
card, relaying messages both ways (copies, threading, edits), telling either side, and moving
the customer's own conversation from a staff update (under the customer's lock)."""
from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Literal, TypeVar

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError, TelegramBadRequest, TelegramForbiddenError
from aiogram.fsm.storage.base import StorageKey
from aiogram.types import InlineKeyboardMarkup, Message, MessageEntity, ReplyParameters

from bot import screens
from bot.context import AppContext
from bot.flows.base import Flow, open_flow
from bot.screens import support as support_screens
from bot.screens.base import Markup, Screen
from bot.state.states import Phone
from config.texts import Translator
from services.support import Agent, SupportCustomer, Ticket, TicketStatus, TranscriptEntry
from services.text_input import neutralise

log = logging.getLogger(__name__)
Speaker = Literal["customer", "agent", "note", "system"]  # who a transcript entry is from
T = TypeVar("T")

# Telegram's words for a topic that is no longer there.
TOPIC_GONE = ("message thread not found", "topic_deleted", "topic not found", "thread not found")
CAPTIONED = ("photo", "document", "voice", "video", "audio", "animation")
TEXT_MAX, CAPTION_MAX = 4096, 1024  # Bot API limits, in UTF-16 code units
RELAYED = (*CAPTIONED, "text", "sticker", "video_note")


def content_kind(message: Message) -> str | None:
    """The kind of a message the desk relays (text or media), or None for anything else."""
    return next((kind for kind in RELAYED if getattr(message, kind, None)), None)


def topic_gone(error: TelegramBadRequest) -> bool:
    text = error.message.lower()
    return any(words in text for words in TOPIC_GONE)


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def shifted(entities: list[MessageEntity] | None, by: int) -> list[MessageEntity] | None:
    """Entities of a text that gets a prefix: offsets move by the prefix's UTF-16 length."""
    if not entities:
        return None
    return [e.model_copy(update={"offset": e.offset + by}) for e in entities]


async def staff_chat_problem(bot: Bot, chat_id: int) -> str | None:
    """Why STAFF_CHAT_ID cannot be the help desk, or None: it must be a forum supergroup (topics
    on) and the bot an administrator allowed to manage topics."""
    try:
        chat = await bot.get_chat(chat_id)
    except TelegramAPIError as error:
        return f"the bot cannot reach STAFF_CHAT_ID {chat_id}: {error.message}"
    if chat.type != "supergroup" or not chat.is_forum:
        return f"STAFF_CHAT_ID {chat_id} is not a forum supergroup: turn Topics on in the group's settings"
    try:
        member = await bot.get_chat_member(chat_id, bot.id)
    except TelegramAPIError as error:
        return f"the bot's rights in STAFF_CHAT_ID {chat_id} cannot be read: {error.message}"
    if member.status == "creator":
        return None
    if member.status != "administrator" or not getattr(member, "can_manage_topics", False):
        return f"the bot must be an administrator of STAFF_CHAT_ID {chat_id} allowed to manage topics"
    return None


def staff_texts(app: AppContext) -> Translator:
    """The texts in the staff group's language."""
    return app.texts.for_lang(app.support.config.staff_language)


class Desk:
    """Built once per bot by the composition root (bot.app) and given to handlers as `desk`."""

    def __init__(self, bot: Bot, app: AppContext) -> None:
        self.bot = bot
        self.app = app
        self.support = app.support

    # --- who and where ---------------------------------------------------------------------

    @property
    def staff_chat(self) -> int:
        chat = self.app.settings.staff_chat_id
        assert chat is not None, "the desk is used only when STAFF_CHAT_ID is set"
        return chat

    @property
    def staff_tr(self) -> Translator:
        return staff_texts(self.app)

    def customer_tr(self, customer: SupportCustomer | None) -> Translator:
        return self.app.texts.for_lang(customer.lang if customer else "zh")

    def topic_link(self, thread_id: int | None) -> str | None:
        """https://t.me/c/<id>/<thread> for a supergroup (-100<id>); None otherwise."""
        digits = str(abs(self.staff_chat))
        if thread_id is None or not digits.startswith("100"):
            return None
        return f"https://t.me/c/{digits[3:]}/{thread_id}"

    async def agents_by_id(self) -> dict[int, Agent]:
        return {a.id: a for a in await self.support.agents()}

    # --- the customer's topic --------------------------------------------------------------

    async def topic(self, customer_id: int) -> tuple[int, bool]:
        """The customer's topic, created (with the live ticket's card pinned) when missing."""
        async def create() -> int:
            customer = await self.support.customer(customer_id) or SupportCustomer(user_id=customer_id)
            live = await self.support.live_ticket(customer_id)
            name = support_screens.topic_name(self.staff_tr, customer, live.status if live else None)
            topic = await self.bot.create_forum_topic(self.staff_chat, name)
            log.info("support.topic_created user=%s thread=%s", customer_id, topic.message_thread_id)
            return topic.message_thread_id

        thread, created = await self.support.ensure_topic(customer_id, self.staff_chat, create)
        if created:
            live = await self.support.live_ticket(customer_id)
            if live is not None:
                await self._send_card(live, thread)
        return thread, created

    async def to_topic(self, customer_id: int, send: Callable[[int], Awaitable[T]]) -> T:
        """Send into the customer's topic; a topic deleted by staff is created again, once."""
        thread, _ = await self.topic(customer_id)
        try:
            return await send(thread)
        except TelegramBadRequest as error:
            if not topic_gone(error):
                raise
            log.info("support.topic_gone user=%s thread=%s", customer_id, thread)
            await self.support.forget_topic(customer_id, self.staff_chat, thread)
            thread, _ = await self.topic(customer_id)
            return await send(thread)

    async def post(self, customer_id: int, text: str, markup: Markup = None, *, reply_to: int | None = None) -> Message:
        reply = ReplyParameters(message_id=reply_to, allow_sending_without_reply=True) if reply_to else None
        return await self.to_topic(customer_id, lambda thread: self.bot.send_message(
            self.staff_chat, text, message_thread_id=thread, reply_markup=markup, reply_parameters=reply))

    async def card(self, ticket: Ticket) -> Screen:
        agent = await self.support.agent(ticket.agent_id) if ticket.agent_id else None
        invoiced = dict(ticket.invoices_issued)
        for order_id in ticket.order_ids:
            if order_id not in invoiced and (at := await self.support.invoice_issued_at(order_id)):
                invoiced[order_id] = at
        return support_screens.intake_card(self.staff_tr, ticket, agent=agent, hours=self.support.hours,
                                           invoiced=invoiced)

    async def _send_card(self, ticket: Ticket, thread: int) -> Message:
        screen = await self.card(ticket)
        message = await self.bot.send_message(self.staff_chat, screen.text, message_thread_id=thread,
                                              reply_markup=screen.markup)
        await self._quietly(self.bot.pin_chat_message(self.staff_chat, message.message_id, disable_notification=True))
        await self.support.set_card(ticket.id, message.message_id)
        return message

    async def post_card(self, ticket: Ticket) -> None:
        """The ticket's intake card in the customer's topic, pinned. A topic made now (the first,
        or again after staff deleted it) comes with the card already: it is not posted twice."""
        thread, created = await self.topic(ticket.user_id)
        if created:
            return
        try:
            await self._send_card(ticket, thread)
        except TelegramBadRequest as error:
            if not topic_gone(error):
                raise
            await self.support.forget_topic(ticket.user_id, self.staff_chat, thread)
            await self.topic(ticket.user_id)

    async def refresh_card(self, ticket: Ticket) -> None:
        """The pinned card follows the ticket (status, agent, buttons)."""
        fresh = await self.support.ticket(ticket.id) or ticket
        if fresh.card_message_id is None:
            return
        screen = await self.card(fresh)
        markup = screen.markup if isinstance(screen.markup, InlineKeyboardMarkup) else None
        await self._quietly(self.bot.edit_message_text(screen.text, chat_id=self.staff_chat,
                                                       message_id=fresh.card_message_id, reply_markup=markup))

    async def sync_topic(self, customer_id: int, ticket: Ticket) -> None:
        """The topic's name shows the ticket's state; a resolved ticket's topic is closed."""
        customer = await self.support.customer(customer_id)
        if customer is None or customer.topic_id is None or customer.topic_chat_id != self.staff_chat:
            return
        thread = customer.topic_id
        name = support_screens.topic_name(self.staff_tr, customer, ticket.status)
        await self._quietly(self.bot.edit_forum_topic(self.staff_chat, thread, name=name))
        if ticket.status is TicketStatus.RESOLVED:
            await self._quietly(self.bot.close_forum_topic(self.staff_chat, thread))
        else:
            await self._quietly(self.bot.reopen_forum_topic(self.staff_chat, thread))

    async def _quietly(self, call: Awaitable[object]) -> bool:
        """Cosmetic calls (pins, topic names, card edits) never fail an update."""
        try:
            await call
            return True
        except TelegramAPIError as error:
            log.info("support.cosmetic_failed error=%s", getattr(error, "message", type(error).__name__))
            return False

    # --- relaying --------------------------------------------------------------------------

    async def relay_from_customer(self, message: Message, ticket: Ticket) -> None:
        """Copy a customer's message into their topic under a customer label, so agents tell
        the customer's words from their own and the bot's at a glance."""
        customer_id = message.chat.id
        reply_to = None
        if message.reply_to_message is not None:
            target = await self.support.linked(customer_id, message.reply_to_message.message_id)
            if target and target[0] == self.staff_chat:
                reply_to = target[1]
        reply = ReplyParameters(message_id=reply_to, allow_sending_without_reply=True) if reply_to else None
        prefix = self.customer_prefix(ticket)
        kind = content_kind(message)

        text, caption = message.text or "", message.caption or ""
        if kind == "text" and utf16_len(prefix + text) <= TEXT_MAX:
            how = "text"
        elif kind in CAPTIONED and utf16_len(prefix + caption) <= CAPTION_MAX:
            how = "caption"
        else:  # stickers and round videos take no caption, and a full-length text takes no more
            how = "above"

        async def send(thread: int) -> int:
            if how == "text":
                sent = await self.bot.send_message(
                    self.staff_chat, prefix + text, message_thread_id=thread, parse_mode=None,
                    entities=shifted(message.entities, utf16_len(prefix)), reply_parameters=reply)
                return sent.message_id
            if how == "caption":
                copied = await self.bot.copy_message(
                    self.staff_chat, customer_id, message.message_id, message_thread_id=thread,
                    caption=prefix + caption, parse_mode=None,
                    caption_entities=shifted(message.caption_entities, utf16_len(prefix)), reply_parameters=reply)
            else:  # the label goes just above the copy
                await self.bot.send_message(self.staff_chat, prefix.rstrip(), message_thread_id=thread)
                copied = await self.bot.copy_message(self.staff_chat, customer_id, message.message_id,
                                                     message_thread_id=thread, reply_parameters=reply)
            return copied.message_id

        copy_id = await self.to_topic(customer_id, send)
        await self.support.link((customer_id, message.message_id), (self.staff_chat, copy_id))
        await self.record(ticket, message, "customer")

    def customer_prefix(self, ticket: Ticket) -> str:
        return self.staff_tr("support.staff.customer_prefix", name=ticket.intake.name)

    async def relay_from_agent(self, message: Message, customer: SupportCustomer, ticket: Ticket,
                               agent: Agent | None) -> bool:
        """Copy an agent's message to the customer, as the service (alias, never the account).
        False when the customer cannot be reached (they blocked the bot)."""
        tr = self.customer_tr(customer)
        prefix = support_screens.agent_prefix(tr, agent)
        reply = None
        origin = message.reply_to_message
        if origin is not None and origin.message_id != message.message_thread_id:
            target = await self.support.linked(self.staff_chat, origin.message_id)
            if target and target[0] == customer.user_id:
                reply = ReplyParameters(message_id=target[1], allow_sending_without_reply=True)
        kind = content_kind(message)
        try:
            if kind == "text":
                sent = await self.bot.send_message(
                    customer.user_id, prefix + (message.text or ""), parse_mode=None,
                    entities=shifted(message.entities, utf16_len(prefix)), reply_parameters=reply)
                copy_id = sent.message_id
            elif kind in CAPTIONED:
                caption = prefix + (message.caption or "")
                copied = await self.bot.copy_message(
                    customer.user_id, self.staff_chat, message.message_id, caption=caption, parse_mode=None,
                    caption_entities=shifted(message.caption_entities, utf16_len(prefix)), reply_parameters=reply)
                copy_id = copied.message_id
            else:  # stickers and round videos take no caption
                copied = await self.bot.copy_message(customer.user_id, self.staff_chat, message.message_id,
                                                     reply_parameters=reply)
                copy_id = copied.message_id
        except TelegramForbiddenError:
            log.info("support.customer_unreachable user=%s", customer.user_id)
            await message.answer(self.staff_tr("support.staff.customer_blocked"))
            return False
        await self.support.link((self.staff_chat, message.message_id), (customer.user_id, copy_id))
        await self.record(ticket, message, "agent", agent_id=agent.id if agent else None)
        return True

    async def mirror_edit(self, message: Message, *, prefix: str = "") -> bool:
        """An edited message's copy is edited too (text and captions: what the Bot API allows)."""
        target = await self.support.linked(message.chat.id, message.message_id)
        if target is None:
            return False
        chat_id, message_id = target
        try:
            if message.text is not None:
                await self.bot.edit_message_text(prefix + message.text, chat_id=chat_id, message_id=message_id,
                                                 parse_mode=None, entities=shifted(message.entities, utf16_len(prefix)))
            elif message.caption is not None or content_kind(message) in CAPTIONED:
                await self.bot.edit_message_caption(
                    chat_id=chat_id, message_id=message_id, caption=prefix + (message.caption or ""), parse_mode=None,
                    caption_entities=shifted(message.caption_entities, utf16_len(prefix)))
            else:
                return False
        except TelegramBadRequest as error:
            if "not modified" in error.message:
                return True
            log.info("support.edit_not_mirrored error=%s", error.message)
            return False
        return True

    async def record(self, ticket: Ticket, message: Message, who: Speaker, *, agent_id: int | None = None) -> None:
        kind = content_kind(message) or "text"
        text = message.text or message.caption or ""
        await self.support.record(ticket.id, TranscriptEntry(at=self.support.now(), who=who, kind=kind, text=text,
                                                             agent_id=agent_id))
        await self.support.count_message(ticket.id)

    async def note(self, ticket: Ticket, text: str, who: Speaker = "system", agent_id: int | None = None) -> None:
        """Kept in the transcript staff read back: what a customer wrote is kept as written, less
        direction, zero-width and control characters (services.text_input.neutralise)."""
        await self.support.record(ticket.id, TranscriptEntry(at=self.support.now(), who=who, text=neutralise(text),
                                                             agent_id=agent_id))

    # --- the customer's chat ---------------------------------------------------------------

    async def tell_customer(self, customer: SupportCustomer, text: str, markup: Markup = None) -> bool:
        try:
            await self.bot.send_message(customer.user_id, text, reply_markup=markup)
            return True
        except TelegramForbiddenError:
            log.info("support.customer_unreachable user=%s", customer.user_id)
            return False

    async def show_banner(self, customer_id: int, tr: Translator) -> None:
        """Pin a one-line "conversation open" banner in the customer's chat (one per live
        ticket). 结束咨询 is on the ticket screen below it, not repeated here."""
        screen = support_screens.banner(tr)
        message = await self.bot.send_message(customer_id, screen.text, reply_markup=screen.markup)
        await self._quietly(self.bot.pin_chat_message(customer_id, message.message_id, disable_notification=True))
        old = await self.support.set_banner(customer_id, message.message_id)
        if old:
            await self._remove_message(customer_id, old)

    async def remove_banner(self, customer_id: int) -> None:
        old = await self.support.set_banner(customer_id, None)
        if old:
            await self._remove_message(customer_id, old)

    async def _remove_message(self, chat_id: int, message_id: int) -> None:
        await self._quietly(self.bot.unpin_chat_message(chat_id, message_id=message_id))
        await self._quietly(self.bot.delete_message(chat_id, message_id))

    @asynccontextmanager
    async def customer_flow(self, customer: SupportCustomer) -> AsyncIterator[Flow]:
        """The customer's conversation, from a staff update: opened under the customer's own
        lock (stored when the block succeeds, left as it was when it raises)."""
        key = StorageKey(bot_id=self.bot.id, chat_id=customer.user_id, user_id=customer.user_id)
        async with open_flow(self.app, key, self.customer_tr(customer)) as flow:
            yield flow

    async def send_home(self, customer: SupportCustomer, notice: str) -> None:
        """Resolved by staff: the bot takes the conversation back; the customer lands on 首页,
        the cart kept (only the step changes)."""
        async with self.customer_flow(customer) as flow:
            if await flow.step() == Phone.number.state:
                await self.tell_customer(customer, flow.tr("phone.closed"), screens.keyboard_removed("").markup)
            await flow.state.set_state(None)
            home = await flow.home()
            await self.tell_customer(customer, f"{notice}\n\n{home.text}", home.markup)
