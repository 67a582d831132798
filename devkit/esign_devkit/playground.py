"""`python -m bot playground`: chat with the production dispatcher in this terminal.

No token and no network: Telegram is the fake of esign_devkit.testing.fake_telegram, SMS codes print
to the console, and payments go through a sandbox `/pay`. Redis is the one at REDIS_URL when
it answers; otherwise an in-process store (nothing persists). The web app (bot.web: checkout
pages, the sandbox gateway's cashier page, payment notices) is served on WEB_HOST:WEB_PORT, and
each checkout link the bot hands out is printed to open in a browser (F12).
"""
from __future__ import annotations

import argparse
import asyncio
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.app import build_context, build_dispatcher
from bot.cli.admin import seed_demo
from bot.errors import PaymentNotStored
from bot.runtime.logs import setup_logging
from bot.runtime.runner import StartupError, load_settings
from esign_devkit.local_redis import open_redis
from esign_devkit.testing.fake_telegram import FakeTelegram, FakeUser, fresh_update_id
from esign_devkit.testing.harness import screen_of
from esign_devkit.testing.scenario import Recorder
from services.catalog import CatalogError, format_fen
from services.sms import ConsoleSms, SmsGateway

HELP = """Type a message to send it. Commands:
  N                 press button N of the last message (longer numbers are sent as text)
  /contact [PHONE]  share your own phone (default: the demo super admin's)
  /contact-other P  share someone else's contact card
  /pay              pay the last invoice (sandbox: pre-checkout, then the payment)
  /help             this help      /quit  leave"""


@dataclass
class Choice:
    message_id: int
    button: dict[str, Any]
    inline: bool


class Playground:
    def __init__(self, telegram: FakeTelegram, dp, bot, user: FakeUser, out=sys.stdout,
                 recorder: Recorder | None = None, sms: SmsGateway | None = None) -> None:
        self.telegram, self.dp, self.bot, self.user, self.out = telegram, dp, bot, user, out
        self.recorder, self.sms = recorder, sms
        self.choices: list[Choice] = []
        telegram.on_bot_message.append(self.print_message)

    def say(self, text: str = "") -> None:
        print(text, file=self.out, flush=True)

    def print_message(self, message: dict[str, Any]) -> None:
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
    settings = load_settings()
    setup_logging("WARNING")
    say = lambda text: print(text, flush=True)  # noqa: E731
    redis = await open_redis(settings.redis_url, say, fresh=bool(args.record))
    try:
        app = build_context(settings, redis)
    except CatalogError as exc:
        raise StartupError(str(exc)) from None
    enterprise, phone = await seed_demo(app.enterprises)
    say(f"Demo enterprise: {enterprise.name} (verified, id {enterprise.id})")
    say(f"Demo phone (its super admin): {phone}  — share it with /contact")
    telegram = FakeTelegram(first_update_id=fresh_update_id())
    bot = telegram.make_bot()
    user = FakeUser(id=args.user_id, first_name="Playground", phone=phone,
                    language_code="en" if args.lang == "en" else "zh-hans")
    telegram.register_user(user)
    recorder = None
    if args.record:
        recorder = Recorder(lang=args.lang, phone=phone, enterprises=await app.enterprises.all(),
                            name=Path(args.record).stem)
    dp = build_dispatcher(app, bot)
    playground = Playground(telegram, dp, bot, user, recorder=recorder, sms=app.sms)
    web_runner = await serve_web(app, bot, dp, say)
    from bot.runtime.jobs import start_background, stop_background  # expiry, trials, reminders (issue 5)

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


def _port_free(host: str, port: int) -> bool:
    import socket

    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as aiohttp's site will
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


async def serve_web(app, bot, dp, say):
    """The web app (checkout, sandbox cashier, notices) on WEB_HOST:WEB_PORT. When that port is
    taken and PUBLIC_BASE_URL is this machine's, another free port is used (and the links say so)."""
    from aiohttp import web

    from bot.web import build_web_app
    from bot.web.security import RedactingAccessLogger

    settings = app.settings
    host, port = settings.web_host, settings.web_port
    local = settings.public_base_url in (f"http://{host}:{port}", f"http://127.0.0.1:{port}", f"http://localhost:{port}")
    if not _port_free(host, port):
        if not local:
            say(f"Web checkout: {host}:{port} is taken; the checkout links will not open (set WEB_PORT).")
            return None
        import socket

        with socket.socket() as sock:
            sock.bind((host, 0))
            port = sock.getsockname()[1]
        base = f"http://{'127.0.0.1' if host in ('0.0.0.0', '') else host}:{port}"
        app.settings = settings.model_copy(update={"public_base_url": base, "web_port": port})
        app.checkout.base_url = base
    web_app = build_web_app(app, bot, dp)
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
