"""Webhook under load: `python -m esign_devkit.loadtest [-n USERS] [--processes 1|2] [--redis URL]`.

The same 高级版 purchases as `python -m bot bench`, end to end over real sockets:

    this process ── signed webhook POSTs ──> 1 or 2 × `python -m bot run` (webhook mode, the
                                             production aiohttp app, bot.web) ── Redis (shared)
    this process <── Bot API calls (HTTP) ── the bot processes: the Bot API stand-in
                                             (esign_devkit.testing.bot_api_server) served from here
    this process <── SMS (HTTP, SMS_BACKEND=http) ── the bot processes: a stand-in SMS provider

Each buyer sends an update, waits until the bot has answered it (the callback or pre-checkout
answered; for a message, the bot's next screen), and sends the next, as a person does. Updates
go round-robin to the processes, so one buyer's updates are handled by both (the per-user lock
and the session live in Redis). A share of the updates (`--duplicates`, 5 %) is delivered twice
at once, to two processes where there are two, as Telegram does when it retries a webhook.

It reports webhook requests/s, the latency of the POST and of the whole update (POST to the
bot's answer at the stand-in), errors (non-2xx answers, ERROR lines the bots logged, buyers
who could not finish), and checks that every buyer has exactly one order, paid once, bound to
their enterprise and delivered once: no order lost or doubled. It uses the bench's database
(14) and deletes only the keys it wrote.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import secrets
import signal
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
STEP_TIMEOUT = 60.0  # seconds a buyer waits for one answer before giving up
START_TIMEOUT = 60.0
CODE = re.compile(r"(?<!\d)\d{6}(?!\d)")
SMS_KEY = "loadtest-sms-key"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


BOT_COMMAND = ("-m", "bot", "run")


def _is_error(line: str) -> bool:
    return '"level": "error"' in line or '"level": "critical"' in line or line.startswith("Traceback")


class Stuck(Exception):
    """A buyer waited too long for the bot's answer."""


def _load_telegram_class() -> type:
    from esign_devkit.bench.telegram import BenchTelegram

    class LoadTelegram(BenchTelegram):
        """The stand-in over HTTP; wakes the buyers of a chat whenever the bot touches it."""

        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.events: dict[int, asyncio.Event] = {}
            self.query_chats: dict[str, int] = {}

        def event(self, chat_id: int) -> asyncio.Event:
            return self.events.setdefault(chat_id, asyncio.Event())

        def _poke(self, chat_id: Any) -> None:
            with contextlib.suppress(TypeError, ValueError):
                chat = int(chat_id)
                event = self.events.get(chat)
                if event is not None:
                    event.set()

        def _notify(self, msg: dict[str, Any]) -> None:
            self._poke(msg["chat"]["id"])

        def _answer_callback_query(self, p: dict[str, Any]) -> bool:
            result = super()._answer_callback_query(p)
            self._poke(self.query_chats.get(str(p.get("callback_query_id"))))
            return result

        def _answer_pre_checkout_query(self, p: dict[str, Any]) -> bool:
            result = super()._answer_pre_checkout_query(p)
            self._poke(self.query_chats.get(str(p.get("pre_checkout_query_id"))))
            return result

        def last_bot_message_id(self, chat_id: int) -> int:
            chat = self._chats[chat_id]
            return max((m["message_id"] for m in chat.messages.values() if m["from"]["id"] == self.bot_id), default=0)

        def new_bot_message(self, chat_id: int, after: int, prefix: str | None = None) -> bool:
            for msg in reversed(self._chats[chat_id].messages.values()):
                if msg["from"]["id"] != self.bot_id or msg["message_id"] <= after:
                    continue
                if prefix is None:
                    return True
                for row in (msg.get("reply_markup") or {}).get("inline_keyboard", ()):
                    if any((b.get("callback_data") or "").startswith(prefix) for b in row):
                        return True
            return False

    return LoadTelegram


@dataclass
class Stats:
    post_latencies: list[float] = field(default_factory=list)
    update_latencies: list[float] = field(default_factory=list)
    posts: int = 0
    http_errors: int = 0
    duplicates: int = 0
    stuck: list[str] = field(default_factory=list)
    first_http_error: str | None = None


def cpu_seconds(pid: int) -> float:
    """User + system CPU a live process has used (Linux /proc), 0.0 where unknown."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return 0.0


def pct(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


class LoadTest:
    def __init__(self, users: int, processes: int, redis_url: str, duplicates: float, pool: int,
                 profile_bot: str | None = None, *, command: tuple[str, ...] = BOT_COMMAND,
                 log_level: str = "INFO", telegram_class: type | None = None,
                 env: dict[str, str] | None = None) -> None:
        from esign_devkit.bench.run import BenchSms, Run

        self.users = users
        self.processes_wanted = processes
        self.duplicates = duplicates
        self.run = Run(redis_url, pool)
        self.telegram = (telegram_class or _load_telegram_class())(bot_id=self.run.bot_id)
        self.command, self.log_level, self.extra_env = command, log_level, env or {}
        self.step_timeout = STEP_TIMEOUT
        self.token = f"{self.run.bot_id}:LOADTEST{secrets.token_hex(4)}"
        self.secret = secrets.token_hex(16)
        self.sms = BenchSms()
        self.stats = Stats()
        self.ports: list[int] = []
        self.procs: list[asyncio.subprocess.Process] = []
        self.stderr: list[list[str]] = []
        self.readers: list[asyncio.Task[None]] = []
        self.runners: list[Any] = []
        self.http: Any = None
        self.rr = 0
        self.scheduler_keys_before: set[str] | None = None
        self.profile_bot = profile_bot  # cProfile the first bot process into this file

    # --- the world -------------------------------------------------------------------------

    async def start(self) -> None:
        import aiohttp
        from aiohttp import web

        from esign_devkit.testing.bot_api_server import serve_bot_api

        runner, api_base = await serve_bot_api(self.telegram, self.token)
        self.runners.append(runner)

        async def sms(request: web.Request) -> web.Response:
            if request.headers.get("Authorization") != f"Bearer {SMS_KEY}":
                return web.Response(status=401)
            body = await request.json()
            await self.sms.send(body["phone"], body["text"])
            return web.json_response({"ok": True})

        sms_app = web.Application()
        sms_app.router.add_post("/sms", sms)
        sms_runner = web.AppRunner(sms_app, access_log=None)
        await sms_runner.setup()
        sms_port = free_port()
        await web.TCPSite(sms_runner, "127.0.0.1", sms_port).start()
        self.runners.append(sms_runner)
        self.http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0),
                                          timeout=aiohttp.ClientTimeout(total=self.step_timeout))

        from config.settings import Settings

        # The bot processes run their scheduler too; the slots it claims are deleted at the end
        # (those that were there before are someone else's and stay).
        self.scheduler_keys_before = {k async for k in self.run.redis.scan_iter(match="{esign}:scheduler:*", count=1000)}
        settings_vars = {name.upper() for name in Settings.model_fields}
        base_env = {k: v for k, v in os.environ.items() if k.upper() not in settings_vars}
        for index in range(self.processes_wanted):
            port = free_port()
            env = {
                **base_env, "PYTHONUNBUFFERED": "1",
                "BOT_TOKEN": self.token, "TELEGRAM_API_BASE": api_base, "REDIS_URL": self.run.redis_url,
                "WEBHOOK_URL": f"http://127.0.0.1:{port}", "WEBHOOK_SECRET": self.secret,
                "WEB_HOST": "127.0.0.1", "WEB_PORT": str(port), "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
                "SMS_BACKEND": "http", "SMS_API_URL": f"http://127.0.0.1:{sms_port}/sms", "SMS_API_KEY": SMS_KEY,
                "CODE_SECRET": "loadtest-secret", "LOG_LEVEL": self.log_level, **self.extra_env,
            }
            profiled = ["-m", "cProfile", "-o", self.profile_bot] if self.profile_bot and index == 0 else []
            proc = await asyncio.create_subprocess_exec(
                sys.executable, *profiled, *self.command, cwd=ROOT, env=env,
                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
            )
            lines: list[str] = []
            self.readers.append(asyncio.create_task(self._read(proc.stderr, lines)))
            self.procs.append(proc)
            self.stderr.append(lines)
            self.ports.append(port)
        for i, port in enumerate(self.ports):
            await self._wait_healthy(i, port)

    @staticmethod
    async def _read(stream: asyncio.StreamReader, sink: list[str]) -> None:
        """The process's log: errors kept, and the last lines (a run at INFO writes many)."""
        async for raw in stream:
            line = raw.decode(errors="replace").rstrip()
            if len(sink) > 200 and not _is_error(line):
                del sink[100]  # keep the first lines (start-up) and the latest
            sink.append(line)

    async def _wait_healthy(self, index: int, port: int) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.procs[index].returncode is not None:
                raise RuntimeError(f"bot process {index + 1} exited at start-up:\n" + "\n".join(self.stderr[index][-15:]))
            with contextlib.suppress(Exception):
                async with self.http.get(f"http://127.0.0.1:{port}/healthz") as resp:
                    if resp.status == 200 and self.telegram.webhook_url:
                        return
            await asyncio.sleep(0.2)
        raise RuntimeError(f"bot process {index + 1} did not serve /healthz within {START_TIMEOUT:.0f}s")

    async def stop(self) -> None:
        for proc in self.procs:
            if proc.returncode is None:
                # SIGINT: `python -m bot run` stops cleanly (and a profiled one writes its profile).
                proc.send_signal(signal.SIGINT)
        for proc in self.procs:
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        for reader in self.readers:
            reader.cancel()
        if self.http is not None:
            await self.http.close()
        for runner in self.runners:
            await runner.cleanup()
        if self.scheduler_keys_before is not None:
            ours = [k async for k in self.run.redis.scan_iter(match="{esign}:scheduler:*", count=1000)
                    if k not in self.scheduler_keys_before]
            if ours:
                await self.run.redis.delete(*ours)

    def bot_errors(self) -> list[str]:
        return [line for lines in self.stderr for line in lines if _is_error(line)]

    # --- buyers ------------------------------------------------------------------------------

    async def post(self, update: dict[str, Any], *, duplicate: bool = False) -> None:
        targets = [self.ports[self.rr % len(self.ports)]]
        self.rr += 1
        if duplicate:
            targets.append(self.ports[self.rr % len(self.ports)])
            self.stats.duplicates += 1
        body = json.dumps(update, ensure_ascii=False).encode()
        headers = {"Content-Type": "application/json", "X-Telegram-Bot-Api-Secret-Token": self.secret}

        async def one(port: int) -> None:
            start = time.perf_counter()
            try:
                async with self.http.post(f"http://127.0.0.1:{port}/telegram/webhook", data=body,
                                          headers=headers) as resp:
                    await resp.read()
                    ok = 200 <= resp.status < 300
                    status = f"HTTP {resp.status}"
            except Exception as exc:  # a refused or reset connection is an error too
                ok, status = False, f"{type(exc).__name__}: {exc}"
            self.stats.post_latencies.append(time.perf_counter() - start)
            self.stats.posts += 1
            if not ok:
                self.stats.http_errors += 1
                self.stats.first_http_error = self.stats.first_http_error or status

        await asyncio.gather(*(one(port) for port in targets))

    async def until(self, chat_id: int, done: Any) -> None:
        event = self.telegram.event(chat_id)
        deadline = time.monotonic() + self.step_timeout
        while not done():
            event.clear()
            if done():
                return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise Stuck(f"chat {chat_id}: no answer in {self.step_timeout:.0f}s; last screen "
                            f"{self.telegram.latest_text(chat_id)[:60]!r}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), remaining)

    async def purchase(self, buyer: Any) -> None:
        tg, u = self.telegram, buyer.user
        chat = u.id
        tg.event(chat)

        async def send(update: dict[str, Any], done: Any) -> None:
            start = time.perf_counter()
            await self.post(update, duplicate=random.random() < self.duplicates)
            await self.until(chat, done)
            self.stats.update_latencies.append(time.perf_counter() - start)
            tg.trim(chat)

        async def message(update: dict[str, Any], next_prefix: str | None = None, also: Any = None) -> None:
            after = tg.last_bot_message_id(chat)
            await send(update, lambda: tg.new_bot_message(chat, after, next_prefix) and (also is None or also()))

        async def tap(prefix: str) -> None:
            update = u.tap(prefix)
            query_id = update["callback_query"]["id"]
            tg.query_chats[query_id] = chat
            await send(update, lambda: query_id in tg.callback_answers)

        try:
            await message(u.text("/start"), "nav:catalog")
            await tap("nav:catalog")
            await tap("nav:buy")
            await tap("ed:advanced")
            await tap("yr:1")
            await tap("pk:none")
            await tap("buy:buy_now")
            await message(u.text(buyer.enterprise_name))
            await message(u.contact(buyer.phone), "ph:", also=lambda: buyer.phone in self.sms.codes)
            await message(u.text(self.sms.codes.pop(buyer.phone)), "buy:submit")
            await tap("buy:submit")
            invoice = tg.latest_invoice(chat)
            buyer.order_id = invoice["payload"]
            check = u.pre_checkout(invoice)
            query_id = check["pre_checkout_query"]["id"]
            tg.query_chats[query_id] = chat
            await send(check, lambda: query_id in tg.pre_checkout_answers)
            if not tg.pre_checkout_answers[query_id].get("ok"):
                raise Stuck(f"chat {chat}: pre-checkout refused: {tg.pre_checkout_answers[query_id]}")
            await message(u.successful_payment(invoice, f"load-{secrets.token_hex(8)}"), "ord:bind:")
            await tap("ord:bind:")
            await tap("bnd:")
            await tap("bok:")
        except Exception as exc:  # Stuck, FlowBroken: counted, and the others go on
            if len(self.stats.stuck) < 1000:
                self.stats.stuck.append(f"{type(exc).__name__}: {exc}")

    async def check_orders(self, buyers: list[Any]) -> dict[str, Any]:
        """Every buyer: one order, paid once, bound to their enterprise, delivered once."""
        from services import keys
        from services.enterprises import RedisEnterpriseDirectory
        from services.orders import Order, OrderStatus

        redis = self.run.redis
        directory = RedisEnterpriseDirectory(redis, None)  # type: ignore[arg-type]
        lost = doubled = bound = 0
        examples: list[str] = []
        for buyer in buyers:
            ids = await redis.zrange(keys.user_orders(buyer.user.id), 0, -1)
            raws = await redis.mget([keys.order(i) for i in ids]) if ids else []
            orders = [Order.model_validate_json(r) for r in raws if r]
            ent = await directory.get(buyer.enterprise_id)
            paid_events = sum(1 for o in orders for e in o.events if e.kind == "paid")
            delivered = ent.delivered_orders if ent else []
            if len(orders) > 1 or paid_events > 1 or len(delivered) > 1:
                doubled += 1
                bad = True
            elif not orders or orders[0].status is not OrderStatus.BOUND or delivered != [orders[0].id]:
                lost += 1
                bad = True
            else:
                bound += 1
                bad = False
            if bad and len(examples) < 5:
                examples.append(f"user {buyer.user.id}: orders {[(o.id, o.status.value) for o in orders]}, "
                                f"delivered {delivered}")
        refunds = await redis.lrange(keys.refunds(), 0, -1)
        ours = [r for r in refunds if any(f'"{o}"' in r for o in self.run.order_ids)] if refunds else []
        return {"buyers": len(buyers), "bound_once": bound, "lost": lost, "doubled": doubled,
                "refunds": len(ours), "examples": examples}

    async def go(self, progress: Any) -> dict[str, Any]:
        from bot.app import build_context
        from config.settings import Settings
        from esign_devkit.bench.run import Buyer, machine
        from esign_devkit.bench.telegram import BenchUser
        from esign_devkit.testing.fake_telegram import FakeUser
        from services.enterprises import Role

        await self.run.redis.ping()
        progress(f"starting {self.processes_wanted} bot process(es) in webhook mode")
        await self.start()
        settings = Settings(_env_file=None, bot_token=None, code_secret="loadtest-secret")
        app = build_context(settings, self.run.redis, sms=self.sms)
        buyers = []
        for _ in range(self.users):
            uid, phone = self.run.new_uid(), self.run.new_phone()
            fake = FakeUser(id=uid, first_name=f"Buyer{uid % 10000}", language_code="zh-hans", phone=phone)
            buyers.append(Buyer(BenchUser(self.telegram, fake), phone, f"深圳压测科技有限公司{uid % 10**7}"))
        gate = asyncio.Semaphore(100)

        async def seed(buyer: Any) -> None:
            async with gate:
                ent = await app.enterprises.add(buyer.enterprise_name, verified=True)
                self.run.enterprise_ids.add(ent.id)
                await app.enterprises.add_member(ent.id, buyer.phone, Role.MEMBER)  # bound after payment (R12)
                buyer.enterprise_id = ent.id

        await asyncio.gather(*(seed(b) for b in buyers))
        progress(f"{self.users} buyers at once, {len(PURCHASE)} updates each")
        bots_cpu = [cpu_seconds(p.pid) for p in self.procs]
        own_cpu = time.process_time()
        started = time.perf_counter()
        await asyncio.gather(*(self.purchase(b) for b in buyers))
        seconds = time.perf_counter() - started
        own_cpu = time.process_time() - own_cpu
        bots_cpu = [cpu_seconds(p.pid) - before for p, before in zip(self.procs, bots_cpu, strict=True)]
        progress("checking the orders")
        await asyncio.sleep(0.5)  # the last answers are sent before the last writes are flushed
        for buyer in buyers:
            if buyer.order_id:
                self.run.order_ids.add(buyer.order_id)
        orders = await self.check_orders(buyers)
        s = self.stats
        errors = self.bot_errors()
        return {
            "users": self.users,
            "processes": self.processes_wanted,
            "updates": len(s.update_latencies),
            "webhook_requests": s.posts,
            "duplicate_deliveries": s.duplicates,
            "seconds": round(seconds, 2),
            "requests_per_s": round(s.posts / seconds, 1),
            "updates_per_s": round(len(s.update_latencies) / seconds, 1),
            "post_p50_ms": round(pct(s.post_latencies, 0.5), 2),
            "post_p99_ms": round(pct(s.post_latencies, 0.99), 2),
            "update_p50_ms": round(pct(s.update_latencies, 0.5), 2),
            "update_p99_ms": round(pct(s.update_latencies, 0.99), 2),
            "bot_cpu_ms_per_update": round(sum(bots_cpu) * 1000 / max(1, len(s.update_latencies)), 3),
            "bot_cpu_seconds_by_process": [round(c, 2) for c in bots_cpu],
            "driver_cpu_ms_per_update": round(own_cpu * 1000 / max(1, len(s.update_latencies)), 3),
            "http_errors": s.http_errors,
            "first_http_error": s.first_http_error,
            "bot_error_lines": len(errors),
            "first_bot_errors": errors[:3],
            "buyers_stuck": len(s.stuck),
            "first_stuck": s.stuck[:3],
            "orders": orders,
            "machine": machine(),
        }


PURCHASE = ("start", "catalog", "buy_now", "edition", "years", "pack", "enterprise_name", "phone", "code",
            "submit", "pre_checkout", "payment", "bind_now", "bind_pick", "bind_confirm")


async def loadtest(users: int, processes: int, redis_url: str, duplicates: float = 0.05, pool: int = 64,
                   profile_bot: str | None = None, progress: Any = lambda _: None) -> dict[str, Any]:
    test = LoadTest(users, processes, redis_url, duplicates, pool, profile_bot)
    try:
        return await test.go(progress)
    finally:
        await test.stop()
        with contextlib.suppress(Exception):
            await test.run.cleanup()
        await test.run.close()


def table(r: dict[str, Any]) -> str:
    o = r["orders"]
    lines = [
        f"bot processes (webhook mode):  {r['processes']}, sharing Redis",
        f"buyers at once:                {r['users']}  ({r['updates']} updates, {r['webhook_requests']} webhook "
        f"requests of which {r['duplicate_deliveries']} repeated deliveries)",
        f"webhook requests/s:            {r['requests_per_s']}",
        f"updates/s (answered):          {r['updates_per_s']}",
        f"webhook POST p50 / p99 ms:     {r['post_p50_ms']} / {r['post_p99_ms']}",
        f"update p50 / p99 ms:           {r['update_p50_ms']} / {r['update_p99_ms']}  (POST to the bot's answer)",
        f"CPU ms per update:             {r['bot_cpu_ms_per_update']} in the bot process(es) "
        f"{r['bot_cpu_seconds_by_process']} s, {r['driver_cpu_ms_per_update']} in this process "
        "(buyers, Bot API stand-in, SMS provider)",
        f"errors:                        {r['http_errors']} non-2xx, {r['bot_error_lines']} ERROR lines logged, "
        f"{r['buyers_stuck']} buyers stuck",
        f"orders:                        {o['bound_once']}/{o['buyers']} bound once, {o['lost']} lost, "
        f"{o['doubled']} doubled, {o['refunds']} refunds",
    ]
    lines += [f"  stuck: {s}" for s in r["first_stuck"]]
    lines += [f"  bot error: {e[:300]}" for e in r["first_bot_errors"]]
    lines += [f"  order problem: {e}" for e in o["examples"]]
    if r["first_http_error"]:
        lines.append(f"  first HTTP error: {r['first_http_error']}")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    from esign_devkit.bench.run import DEFAULT_REDIS_URL

    parser = argparse.ArgumentParser(prog="python -m esign_devkit.loadtest", description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--users", type=int, default=100, help="buyers at once (default 100)")
    parser.add_argument("--processes", type=int, default=1, choices=(1, 2, 3, 4),
                        help="bot processes sharing Redis (default 1)")
    parser.add_argument("--redis", default=os.environ.get("BENCH_REDIS_URL", DEFAULT_REDIS_URL),
                        help=f"Redis URL (default {DEFAULT_REDIS_URL}); only the keys written here are deleted")
    parser.add_argument("--duplicates", type=float, default=0.05,
                        help="share of updates delivered twice at once (default 0.05)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--profile-bot", metavar="FILE",
                        help="run the first bot process under cProfile and write its stats to FILE")
    args = parser.parse_args(argv)
    if args.users < 1 or not 0 <= args.duplicates <= 1:
        parser.error("--users must be at least 1 and --duplicates between 0 and 1")
    progress = (lambda _: None) if args.json else (lambda text: print(f"... {text}", file=sys.stderr, flush=True))
    result = asyncio.run(loadtest(args.users, args.processes, args.redis, args.duplicates,
                                  profile_bot=args.profile_bot, progress=progress))
    print(json.dumps(result, ensure_ascii=False) if args.json else table(result))
    o = result["orders"]
    clean = not (result["http_errors"] or result["buyers_stuck"] or o["lost"] or o["doubled"])
    return 0 if clean else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
