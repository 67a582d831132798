"""`python -m bot playground`: chat with the production dispatcher in this terminal.

No token and no network: Telegram is the fake of esign_devkit.testing.fake_telegram, SMS codes print
to the console, and payments go through a sandbox `/pay`. Redis is the one at REDIS_URL when
it answers; otherwise an in-process store (nothing persists). The web app (bot.web: checkout
pages, the sandbox gateway's cashier page, payment notices) is served on WEB_HOST:WEB_PORT, and
each checkout link the bot hands out is printed to open in a browser (F12).

Customer service (F11) works without a real staff group: the bot's staff group is a forum of the
fake Telegram, its posts print here marked 🛎, and `/agent ...` lets you play the agent.
"""
from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.app import build_context, build_dispatcher
from bot.cli.admin import seed_demo
from bot.context import AppContext
from bot.errors import PaymentNotStored
from bot.runtime.logs import setup_logging
from bot.runtime.runner import StartupError, load_settings
from config.settings import Settings
from esign_devkit.local_redis import open_redis
from esign_devkit.playground_env import free_port, generous_codes, is_port_free
from esign_devkit.testing.fake_telegram import FakeTelegram, FakeUser, fresh_update_id
from esign_devkit.testing.harness import screen_of
from esign_devkit.testing.scenario import Recorder
from esign_devkit.webplay.server import STAFF_TITLE, with_playground_staff_chat
from services.catalog import CatalogError, format_fen
from services.sms import ConsoleSms, SmsGateway

HELP = """Type a message to send it. Commands:
  N                 press button N of the last message (longer numbers are sent as text)
  /contact [PHONE]  share your own phone (default: the demo super admin's)
  /contact-other P  share someone else's contact card
  /pay              pay the last invoice (sandbox: pre-checkout, then the payment)
  /help             this help      /quit  leave
Customer service: after 联系客服 or 购买咨询, play the agent (the staff group's posts print with 🛎):
  /agent            open consultations waiting for an agent (the staff group's /queue)
  /agent claim      take your consultation           /agent close   end it
  /agent reply TEXT answer you as the agent          /agent quote flagship 1 [pack] [price]
  /agent /CMD ...   any staff command in your topic (/note, /invoiced, /transfer, /history, /help)"""

AGENT_ID = 20001  # the agent you play (the browser playground's first agent too)
AGENT_NAME, AGENT_ALIAS = "Li", "客服小李"


@dataclass
class Choice:
    message_id: int
    button: dict[str, Any]
    inline: bool


class Playground:
    def __init__(self, telegram: FakeTelegram, dp, bot, user: FakeUser, out=sys.stdout,
                 recorder: Recorder | None = None, sms: SmsGateway | None = None,
                 app: AppContext | None = None) -> None:
        self.telegram, self.dp, self.bot, self.user, self.out = telegram, dp, bot, user, out
        self.recorder, self.sms, self.app = recorder, sms, app
        self.choices: list[Choice] = []
        self.agent = FakeUser(id=AGENT_ID, first_name=AGENT_NAME, language_code="zh-hans")
        self.alias_set = self.alias_recorded = False
        telegram.on_bot_message.append(self.print_message)

    @property
    def staff_chat_id(self) -> int | None:
        return self.app.settings.staff_chat_id if self.app is not None else None

    def say(self, text: str = "") -> None:
        print(text, file=self.out, flush=True)

    def print_message(self, message: dict[str, Any]) -> None:
        if message["chat"]["id"] == self.staff_chat_id and self.staff_chat_id is not None:
            self.print_staff_message(message)
            return
        if message["chat"]["id"] != self.user.id:
            return
        edited = "✏️  " if message.get("edit_date") else ""
        body = message.get("text") or message.get("caption") or ""
        if "invoice" in message:
            inv = message["invoice"]
            body = (f"💳 {inv['title']} — {format_fen(inv['total_amount'])} {inv['currency']}\n"
                    f"{inv['description']}\n(type /pay to pay in the sandbox)")
        self.say(f"\n🤖 {edited}{body}")
        choices = []
        checkout_links: list[str] = []
        for row in (message.get("reply_markup") or {}).get("inline_keyboard", []):
            labels = []
            for button in row:
                choices.append(Choice(message["message_id"], button, inline=True))
                url = button.get("url") or (button.get("web_app") or {}).get("url")
                target = f" → {url}" if url else ""
                labels.append(f"[{len(choices)}] {button['text']}{target}")
                if url and "/checkout/" in url:
                    checkout_links.append(url)
            self.say("   " + "   ".join(labels))
        for row in (message.get("reply_keyboard") or {}).get("keyboard", []):
            labels = []
            for button in row:
                choices.append(Choice(message["message_id"], button, inline=False))
                labels.append(f"[{len(choices)}] ⌨ {button['text']}")
            self.say("   " + "   ".join(labels))
        for url in checkout_links:
            self.say(f"🌐 Web checkout (open in a browser): {url}")
        if choices or not edited:
            self.choices = choices

    def print_staff_message(self, message: dict[str, Any]) -> None:
        """What the bot posts in the staff group, for the agent you play: new posts only (the
        pinned card's edits would repeat it), buttons by label (/agent commands do what they do)."""
        if message.get("edit_date") or "forum_topic_created" in message:
            return
        body = message.get("text") or message.get("caption") or ""
        lines = body.splitlines() or [""]
        self.say("\n🛎 " + "\n   ".join(lines))
        labels = [button["text"] for row in (message.get("reply_markup") or {}).get("inline_keyboard", [])
                  for button in row]
        if labels:
            self.say("   (" + " · ".join(labels) + ")")

    async def has_topic(self) -> bool:
        customer = await self.app.support.customer(self.user.id) if self.app is not None else None
        return customer is not None and customer.topic_id is not None

    async def as_agent(self, args: str) -> str | None:
        """`/agent ...`: what an agent would do in the staff group, sent there as the agent.
        Returns what the agent wrote (a command or a reply), None when nothing was sent."""
        chat = self.staff_chat_id
        if chat is None or self.app is None:
            self.say("(this bot has no staff group: 联系客服 shows the contact details instead)")
            return None
        words = args.split(maxsplit=1)
        verb, rest = (words[0].lower(), words[1] if len(words) > 1 else "") if words else ("", "")
        thread = None
        if verb in ("", "list", "queue"):
            text = "/queue"  # answered anywhere in the group
        else:
            customer = await self.app.support.customer(self.user.id)
            thread = customer.topic_id if customer is not None and customer.topic_chat_id == chat else None
            if thread is None:
                self.say("(no consultation yet: tap 联系客服 or 购买咨询 first)")
                return None
            if verb in ("reply", "say"):
                text = rest
            elif verb in ("claim", "close", "quote", "note", "invoiced", "transfer", "history", "ban", "unban", "help"):
                text = f"/{verb} {rest}".strip()
            else:
                text = args.strip()  # a staff command as typed, or else a reply
            if not text:
                self.say("(usage: /agent reply TEXT)")
                return None
        if not self.alias_set:  # customers see the alias, as they would a real agent's
            await self.app.support.set_alias(AGENT_ID, AGENT_ALIAS, name=AGENT_NAME)
            self.alias_set = True
        await self.feed(self.telegram.message_update(self.agent, text, chat_id=chat, message_thread_id=thread))
        return text

    async def feed(self, update) -> None:
        await self.dp.feed_update(self.bot, update)

    async def handle(self, line: str) -> bool:
        """One line of input; False when the user wants to leave."""
        line = line.strip()
        if not line:
            return True
        if line in ("/quit", "/exit"):
            return False
        step: tuple[str, str | None] | None = None  # the scenario step this line was, if any
        if line == "/help":
            self.say(HELP)
        elif line.isdigit() and len(line) <= 2 and self.choices:  # longer: a phone or a code
            label = await self.press(int(line))
            step = ("tap", label) if label else None
        elif line == "/agent" or line.startswith("/agent "):
            wrote = await self.as_agent(line.removeprefix("/agent"))
            if wrote and self.recorder and await self.has_topic():  # a replay's agent steps act in a topic
                if not self.alias_recorded:  # the replay's agent takes the alias the way an agent does
                    self.recorder.step("agent_command", f"/alias {AGENT_ALIAS}")
                    self.alias_recorded = True
                step = ("agent_command" if wrote.startswith("/") else "agent_send", wrote)
        elif line.startswith("/contact-other"):
            phone = line.removeprefix("/contact-other").strip() or "+8613900000000"
            await self.feed(self.telegram.contact_update(self.user, phone, own=False))
            step = ("contact_other", phone)
        elif line.startswith("/contact"):
            phone = line.removeprefix("/contact").strip() or self.user.phone
            await self.feed(self.telegram.contact_update(self.user, phone))
            step = ("contact", None if phone == self.user.phone else phone)
        elif line == "/pay":
            step = ("pay", None) if await self.pay() else None
        else:
            step = self.typed_step(line)
            await self.feed(self.telegram.message_update(self.user, line))
        if step and self.recorder:
            kind, value = step
            if kind == "tap" and value:
                self.recorder.tap(value)
            else:
                self.recorder.step(kind, value)
            self.recorder.screen(screen_of(self.telegram, self.user.id))
        return True

    def typed_step(self, text: str) -> tuple[str, str | None]:
        """Typed text as a scenario step: an SMS code is `code` (codes differ from run to run)."""
        if isinstance(self.sms, ConsoleSms) and self.sms.outbox and text.isdigit() and len(text) == 6:
            for phone in dict.fromkeys(sms.phone for sms in self.sms.outbox):
                if self.sms.last_code(phone) == text:
                    return ("code", None if phone == self.user.phone else phone)
            return ("wrong_code", None)
        return ("send", text)

    async def press(self, number: int) -> str | None:
        """Press button `number`; returns its label when something was pressed (not a link)."""
        if not 1 <= number <= len(self.choices):
            self.say(f"(no button {number}; the last message has {len(self.choices)})")
            return None
        choice = self.choices[number - 1]
        button = choice.button
        if not choice.inline:
            if button.get("request_contact"):
                await self.feed(self.telegram.contact_update(self.user, self.user.phone))
            else:
                await self.feed(self.telegram.message_update(self.user, button["text"]))
        elif "url" in button or "web_app" in button:
            url = button.get("url") or button["web_app"]["url"]
            self.say(f"(a link: open {url} in a browser)")
            return None
        else:
            await self.feed(self.telegram.callback_update(self.user, choice.message_id, button["callback_data"]))
            answer = next(iter(reversed(self.telegram.callback_answers.values())), None)
            if answer and answer.get("text"):
                self.say(f"(notice: {answer['text']})")
        return str(button["text"])

    async def pay(self) -> bool:
        """Pay the last invoice in the sandbox; True when the payment went through."""
        invoices = self.telegram.invoices(self.user.id)
        if not invoices:
            self.say("(there is no invoice to pay)")
            return False
        invoice = invoices[-1]
        update = self.telegram.pre_checkout_update(self.user, invoice["message_id"])
        await self.feed(update)
        answer = self.telegram.pre_checkout_answer(update.pre_checkout_query.id) or {}
        if not answer.get("ok"):
            self.say(f"(payment refused: {answer.get('error_message', 'no answer')})")
            return False
        self.say(f"(sandbox: paid {format_fen(invoice['total_amount'])})")
        try:
            await self.feed(self.telegram.successful_payment_update(self.user, invoice["message_id"]))
        except PaymentNotStored:  # Telegram would deliver it again; here /pay tries once more
            self.say("(the payment was not stored: Redis did not answer; Telegram would deliver it again)")
            return False
        return True


async def play(args: argparse.Namespace) -> int:
    settings = with_playground_staff_chat(load_settings())
    setup_logging("WARNING")
    say = lambda text: print(text, flush=True)  # noqa: E731
    settings, note = web_settings(settings)
    if note:
        say(note)
    redis = await open_redis(settings.redis_url, say, fresh=bool(args.record))
    try:
        app = build_context(settings, redis)
    except CatalogError as exc:
        raise StartupError(str(exc)) from None
    app.codes.policy = generous_codes(app.codes.policy)
    enterprise, phone = await seed_demo(app.enterprises)
    say(f"Demo enterprise: {enterprise.name} (verified, id {enterprise.id})")
    say(f"Demo phone (its super admin): {phone}  — share it with /contact")
    telegram = FakeTelegram(first_update_id=fresh_update_id())
    if app.settings.staff_chat_id is not None:  # the help desk's forum, in the fake Telegram
        telegram.add_chat(app.settings.staff_chat_id, type="supergroup", title=STAFF_TITLE, is_forum=True)
    bot = telegram.make_bot()
    user = FakeUser(id=args.user_id, first_name="Playground", phone=phone,
                    language_code="en" if args.lang == "en" else "zh-hans")
    telegram.register_user(user)
    recorder = None
    if args.record:
        recorder = Recorder(lang=args.lang, phone=phone, enterprises=await app.enterprises.all(),
                            name=Path(args.record).stem)
    dp = build_dispatcher(app, bot)
    playground = Playground(telegram, dp, bot, user, recorder=recorder, sms=app.sms, app=app)
    web_runner = await serve_web(app, bot, dp, say)
    from bot.runtime.jobs import start_background, stop_background  # expiry, trials, reminders

    jobs = start_background(app, bot, dp["desk"])
    say(HELP)
    await playground.handle("/start")
    interactive = sys.stdin.isatty()
    try:
        while True:
            if interactive:
                print("\nyou> ", end="", flush=True)
            line = await asyncio.to_thread(sys.stdin.readline)
            if not line:  # end of input
                break
            if not interactive:
                say(f"\nyou> {line.rstrip()}")
            if not await playground.handle(line):
                break
    finally:
        await stop_background(jobs)
        if web_runner is not None:
            await web_runner.cleanup()
        await bot.session.close()
        await redis.aclose()
        if recorder:
            path = recorder.save(args.record)
            say(f"\nRecorded {recorder.steps} steps to {path}; replay them with: python -m bot flowtest {path}")
    return 0


def web_settings(settings: Settings, port_free: Callable[[str, int], bool] = is_port_free) -> tuple[Settings, str | None]:
    """Where the playground's web app listens and where its links point, decided before the
    services are built (checkout links and payment notices read PUBLIC_BASE_URL then).

    Without PUBLIC_BASE_URL the links follow the server: WEB_HOST:WEB_PORT, or a free port when
    that one is taken. A PUBLIC_BASE_URL given (a tunnel, say) is kept as it is. Returns the
    settings and a note to print (None when all is as asked)."""
    host, port = settings.web_host, settings.web_port
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    if "public_base_url" in settings.model_fields_set:
        if not port_free(host, port):
            return settings, f"Web checkout: {host}:{port} is taken; the checkout links will not open (set WEB_PORT)."
        return settings, None
    note = None
    if not port_free(host, port):
        free = free_port(host)
        note = f"Web checkout: port {port} is taken, using {free} (the links say so)."
        port = free
    return settings.model_copy(update={"web_port": port, "public_base_url": f"http://{shown}:{port}"}), note


async def serve_web(app, bot, dp, say):
    """The web app (checkout, sandbox cashier, notices) on WEB_HOST:WEB_PORT (see web_settings)."""
    from aiohttp import web

    from bot.web import build_web_app
    from bot.web.security import RedactingAccessLogger
    from bot.web.state import STATE

    settings = app.settings
    host, port = settings.web_host, settings.web_port
    web_app = build_web_app(app, bot, dp)
    web_app[STATE].chat_page = ""  # 返回聊天: the chat is this terminal, not a t.me bot
    runner = web.AppRunner(web_app, access_log_class=RedactingAccessLogger, shutdown_timeout=1.0)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError as exc:
        await runner.cleanup()
        say(f"Web checkout: cannot listen on {host}:{port} ({exc.strerror or exc}); the checkout links will not open.")
        return None
    say(f"Web checkout: {app.settings.public_base_url} (checkout pages and the sandbox cashier; SMS codes print here)")
    return runner


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot playground", description=__doc__.splitlines()[0])
    parser.add_argument("--lang", choices=["zh", "en"], default="zh", help="the user's Telegram language")
    parser.add_argument("--user-id", type=int, default=10001, help="the simulated user's Telegram id")
    parser.add_argument("--record", metavar="FILE",
                        help="write the session as a scenario file (replay: python -m bot flowtest FILE)")
    parser.add_argument("--web", action="store_true",
                        help="the playground in the browser instead of this terminal (bot/webplay)")
    parser.add_argument("--port", type=int, default=8000, help="with --web: the page's port (default 8000)")
    parser.add_argument("--gateway", choices=["sandbox", "wechat", "alipay"], default="sandbox",
                        help="with --web: the web checkout's payments through the sandbox, or a local "
                             "WeChat Pay or Alipay (docs/payments.md)")
    args = parser.parse_args(argv)
    if args.web:
        from esign_devkit.webplay import main as web_playground
        return web_playground(args)
    try:
        return asyncio.run(play(args))
    except StartupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0
