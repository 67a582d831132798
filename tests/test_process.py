"""The bot as a real process: `python -m bot run` long-polls the fake Bot API over a socket
(TELEGRAM_API_BASE), on the tests' Redis db, with the console SMS backend printing codes on stdout.

Covers the whole 高级版 purchase end to end, hard kills (SIGKILL) mid-flow and between a payment
and its confirmation, and the one-line fail-fast start-up errors.
"""
from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import socket
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiogram.fsm.storage.base import StorageKey
from esign_devkit.testing.bot_api_server import serve_bot_api
from esign_devkit.testing.fake_telegram import JSON, FakeApiError, FakeTelegram, FakeUser

from bot.state.conversations import TaggedKeyBuilder
from config.settings import Settings
from services import keys
from services.phones import mask_phone
from tests.conftest import TEST_REDIS_URL

ROOT = Path(__file__).resolve().parent.parent
ENTERPRISE = "深圳示例科技有限公司"
DEMO_PHONE = "+8613800138000"
STEP_TIMEOUT = 10.0  # one bot reply
START_TIMEOUT = 30.0  # a bot process until it polls: importing aiogram alone takes 3 s, more on a busy box
PROCESS_TIMEOUT = 30.0  # a whole short-lived process (fail-fast, admin CLI)
STOP_TIMEOUT = 5.0  # SIGTERM → exit, then SIGKILL
SMS_LINE = re.compile(r"^SMS to (?P<to>\S+): .*?(?<!\d)(?P<code>\d{6})(?!\d)")
PAID = "支付成功"


def clean_env(**overrides: str) -> dict[str, str]:
    """This environment without anything Settings would read, plus the overrides."""
    settings_vars = {name.upper() for name in Settings.model_fields}
    env = {k: v for k, v in os.environ.items() if k.upper() not in settings_vars}
    return {**env, "PYTHONUNBUFFERED": "1", **overrides}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def text_of(message: JSON) -> str:
    return message.get("text") or message.get("caption") or ""


def screen_of(message: JSON) -> str:
    """The 订单确认 screen without the notice above it."""
    text = text_of(message)
    return text[text.index("🧾 订单确认"):]


def tail(lines: list[str], n: int = 15) -> str:
    return "\n".join(f"    {line}" for line in lines[-n:]) or "    (nothing)"


async def wait_until(condition: Callable[[], Awaitable[Any]], what: str, timeout: float = STEP_TIMEOUT) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await condition()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.05)


async def run_cli(*args: str, env: dict[str, str]) -> tuple[int, str, str]:
    """A short-lived `python -m bot ...`; (exit code, stdout, stderr). Killed if it hangs."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", *args, cwd=ROOT, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), PROCESS_TIMEOUT)
    except TimeoutError:
        proc.kill()
        out, err = await proc.communicate()
        raise AssertionError(
            f"python -m bot {' '.join(args)} still running after {PROCESS_TIMEOUT}s; "
            f"stdout: {out.decode(errors='replace')!r} stderr: {err.decode(errors='replace')!r}"
        ) from None
    return proc.returncode, out.decode(errors="replace"), err.decode(errors="replace")


class BotProcess:
    """One `python -m bot run`; stdout and stderr are read line by line as they come."""

    def __init__(self, env: dict[str, str], name: str) -> None:
        self.env = env
        self.name = name
        self.proc: asyncio.subprocess.Process | None = None
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        self._readers: list[asyncio.Task[None]] = []

    async def start(self) -> BotProcess:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "run", cwd=ROOT, env=self.env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        self._readers = [asyncio.create_task(self._read(self.proc.stdout, self.stdout)),
                         asyncio.create_task(self._read(self.proc.stderr, self.stderr))]
        return self

    @staticmethod
    async def _read(stream: asyncio.StreamReader, sink: list[str]) -> None:
        async for raw in stream:
            sink.append(raw.decode(errors="replace").rstrip("\n"))

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    async def code_for(self, masked_phone: str, *, since: int, timeout: float = STEP_TIMEOUT) -> str:
        """The code of the first SMS line printed to `masked_phone` after stdout line `since`."""
        async def found() -> str | None:
            for line in self.stdout[since:]:
                match = SMS_LINE.match(line)
                if match and match["to"] == masked_phone:
                    return match["code"]
            if not self.running:
                raise AssertionError(f"{self.name} exited ({self.proc.returncode}) before sending the SMS\n{self.report()}")
            return None

        try:
            return await wait_until(found, f"an SMS to {masked_phone} on {self.name}'s stdout", timeout)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.report()}") from None

    async def kill(self) -> int:
        """SIGKILL: no shutdown code runs."""
        assert self.proc is not None
        if self.running:
            self.proc.kill()
        return await self._reap()

    async def stop(self) -> int | None:
        """SIGTERM, then SIGKILL if it has not exited within STOP_TIMEOUT."""
        if self.proc is None:
            return None
        if self.running:
            self.proc.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), STOP_TIMEOUT)
            except TimeoutError:
                self.proc.kill()
        return await self._reap()

    async def _reap(self) -> int:
        assert self.proc is not None
        code = await asyncio.wait_for(self.proc.wait(), STOP_TIMEOUT)
        await asyncio.wait(self._readers, timeout=STOP_TIMEOUT)
        return code

    def report(self) -> str:
        state = "running" if self.running else f"exited {self.proc.returncode if self.proc else '-'}"
        return (f"{self.name} ({state}) stdout tail:\n{tail(self.stdout)}\n"
                f"{self.name} stderr tail:\n{tail(self.stderr)}")


class World:
    """The fake Bot API on a socket, the bot processes started against it and one buyer."""

    def __init__(self, fake: FakeTelegram, base_url: str, redis: Any) -> None:
        self.fake = fake
        self.base_url = base_url
        self.redis = redis
        self.processes: list[BotProcess] = []
        buyer_id = secrets.randbelow(10**9) + 10**9
        self.buyer = FakeUser(id=buyer_id, first_name="买家", language_code="zh-hans", phone=DEMO_PHONE)

    # --- processes -----------------------------------------------------------------------------

    def env(self, **overrides: str) -> dict[str, str]:
        """The environment of `python -m bot run` against this world."""
        settings = {"BOT_TOKEN": f"{self.fake.bot_id}:TEST", "TELEGRAM_API_BASE": self.base_url,
                    "REDIS_URL": TEST_REDIS_URL, "SMS_BACKEND": "console",
                    "WEB_PORT": str(free_port())}  # its web pages: not on anyone's 8080
        return clean_env(**{**settings, **overrides})

    async def start_bot(self) -> BotProcess:
        """Start `python -m bot run` and wait until it polls (its deleteWebhook comes right before)."""
        process = BotProcess(self.env(), name=f"bot process #{len(self.processes) + 1}")
        self.processes.append(process)
        started = len(self.fake.calls_of("deleteWebhook"))
        await process.start()

        async def polling() -> bool:
            if not process.running:
                raise AssertionError(f"{process.name} exited at start-up\n{process.report()}")
            return len(self.fake.calls_of("deleteWebhook")) > started

        try:
            await wait_until(polling, f"{process.name} to start polling", START_TIMEOUT)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{process.report()}") from None
        return process

    @property
    def bot(self) -> BotProcess:
        return self.processes[-1]

    async def admin(self, *args: str) -> str:
        code, out, err = await run_cli("admin", *args, env=clean_env(REDIS_URL=TEST_REDIS_URL))
        assert code == 0, f"python -m bot admin {' '.join(args)} exited {code}: {err.strip()}"
        return out

    async def seed_enterprise(self) -> str:
        """A verified enterprise the demo phone has joined as a plain member, by the operator's
        CLI: a purchase for it is paid, then bound (R12; an admin's would be delivered at once)."""
        ent_id = (await self.admin("add-enterprise", "--name", ENTERPRISE, "--verified")).split()[-1]
        await self.admin("add-member", ent_id, DEMO_PHONE, "--role", "member")
        return ent_id

    # --- the buyer's side: one line per step ---------------------------------------------------

    def recent(self, n: int = 6) -> str:
        lines = []
        for message in self.fake.messages(self.buyer.id)[-n:]:
            who = "bot" if message["from"]["id"] == self.fake.bot_id else "user"
            body = text_of(message) or json.dumps({k: v for k, v in message.items()
                                                   if k in ("invoice", "contact", "successful_payment")},
                                                  ensure_ascii=False)
            lines.append(f"{who}: {body}")
        return tail(lines, n)

    def failure(self, what: str) -> str:
        return f"{what}\nlast messages in the chat:\n{self.recent()}\n{self.bot.report()}"

    async def expect(self, expected: str | Callable[[JSON], bool], *, since: int,
                     timeout: float = STEP_TIMEOUT) -> JSON:
        """The first bot message (sent or edited) after bot_log[since] that has `expected`."""
        predicate = expected if callable(expected) else (lambda m: expected in text_of(m))
        try:
            return await self.fake.wait_for_message(self.buyer.id, predicate, timeout, since=since)
        except TimeoutError:
            label = expected if isinstance(expected, str) else getattr(expected, "__doc__", None) or "a match"
            raise AssertionError(self.failure(f"no bot reply with {label!r} within {timeout}s")) from None

    async def push(self, update: Any, expected: str | Callable[[JSON], bool]) -> JSON:
        since = len(self.fake.bot_log)
        self.fake.push_update(update)
        return await self.expect(expected, since=since)

    async def send(self, text: str, expected: str | Callable[[JSON], bool]) -> JSON:
        return await self.push(self.fake.message_update(self.buyer, text), expected)

    async def tap(self, label: str | re.Pattern[str], expected: str | Callable[[JSON], bool]) -> JSON:
        try:
            update = self.fake.click(self.buyer, label)
        except LookupError as exc:
            raise AssertionError(self.failure(str(exc))) from None
        return await self.push(update, expected)

    async def share_contact(self, expected: str) -> JSON:
        return await self.push(self.fake.contact_update(self.buyer), expected)

    async def pre_checkout(self, invoice: JSON) -> JSON:
        update = self.fake.pre_checkout_update(self.buyer, invoice["message_id"])
        self.fake.push_update(update)
        query_id = update.pre_checkout_query.id

        async def answered() -> JSON | None:
            return self.fake.pre_checkout_answer(query_id)

        try:
            return await wait_until(answered, "the pre-checkout answer")
        except AssertionError as exc:
            raise AssertionError(self.failure(str(exc))) from None

    def invoice(self) -> JSON:
        invoices = self.fake.invoices(self.buyer.id)
        assert invoices, self.failure("no invoice in the chat")
        return invoices[-1]

    # --- Redis ----------------------------------------------------------------------------------

    def fsm_key(self, part: str) -> str:
        key = StorageKey(bot_id=self.fake.bot_id, chat_id=self.buyer.id, user_id=self.buyer.id)
        return TaggedKeyBuilder().build(key, part)

    async def at_rest(self, step: str, **session: Any) -> bool:
        """The buyer's conversation is stored at `step` with `session` values, and no update of
        theirs is being handled (aiogram's per-user lock is free)."""
        state, data, lock = await self.redis.mget(self.fsm_key("state"), self.fsm_key("data"), self.fsm_key("lock"))
        stored = (json.loads(data) if data else {}).get("session", {})
        return state == step and lock is None and all(stored.get(k) == v for k, v in session.items())

    async def handled(self, update_id: int) -> bool:
        """The update went through the dispatcher and its handler is done (lock released)."""
        seen, lock = await self.redis.mget(self.fsm_key(f"seen:{update_id}"), self.fsm_key("lock"))
        return seen is not None and lock is None

    async def orders(self) -> list[JSON]:
        ids = await self.redis.zrange(keys.user_orders(self.buyer.id), 0, -1)
        return [json.loads(await self.redis.get(keys.order(order_id))) for order_id in ids]


@pytest.fixture
async def world(redis):
    # Its own bot id: the update-dedup and FSM keys carry it, so other tests on the db don't collide.
    fake = FakeTelegram(bot_id=secrets.randbelow(10**9) + 6 * 10**9)
    runner, base_url = await serve_bot_api(fake, f"{fake.bot_id}:TEST")
    w = World(fake, base_url, redis)
    try:
        yield w
    finally:
        for process in w.processes:
            await process.stop()
        await runner.cleanup()


async def buy_until_confirmation(w: World) -> JSON:
    """/start → … → the SMS code typed in; returns the 订单确认 message."""
    await w.send("/start", "欢迎使用腾讯电子签")
    await w.tap("购买套餐", "高级版：¥4,800.00/年")
    await w.tap("立即购买", "版本选购")
    await w.tap(re.compile("^高级版"), "请选择购买时长")
    await w.tap(re.compile("^1年"), "是否加购合同加量包")
    await w.tap(re.compile("^不加购合同加量包"), "产品选购")
    await w.tap("立即购买", "企业名称")
    await w.send(ENTERPRISE, "验证手机号")
    sms_since = len(w.bot.stdout)
    await w.share_contact("验证码已发送至")
    code = await w.bot.code_for(mask_phone(DEMO_PHONE), since=sms_since)
    confirmation = await w.send(code, "订单确认")
    assert "高级版 1年：¥4,800.00" in text_of(confirmation)
    assert "合计：¥4,800.00" in text_of(confirmation)
    assert "合同份数：600 份" in text_of(confirmation)
    return confirmation


def is_invoice(message: JSON) -> bool:
    """an invoice"""
    return "invoice" in message


async def submit_and_pay(w: World, *, submit: Callable[[], Awaitable[Any]] | None = None) -> JSON:
    """提交订单 (or `submit`) → invoice → pre-checkout ok; returns the invoice."""
    if submit is None:
        await w.tap("提交订单", is_invoice)
    else:
        await submit()
    invoice = w.invoice()
    assert invoice["currency"] == "CNY" and invoice["total_amount"] == 480_000
    [order] = await w.orders()
    assert order["status"] == "pending_payment" and invoice["payload"] == order["id"]
    answer = await w.pre_checkout(invoice)
    assert answer == {"ok": True}, w.failure(f"pre-checkout refused: {answer}")
    return invoice


async def bind_and_check(w: World, ent_id: str) -> None:
    await w.tap("立即绑定", "请选择要将订单")
    await w.tap(ENTERPRISE, "确认将订单")
    await w.tap("确认绑定", "绑定成功")
    home = await w.send("/start", "当前版本")
    assert "当前版本：高级版" in text_of(home)
    assert "合同余量：600 份" in text_of(home)
    [order] = await w.orders()
    assert order["status"] == "bound" and order["enterprise_id"] == ent_id
    enterprise = json.loads(await w.redis.get(keys.enterprise(ent_id)))
    assert enterprise["edition"] == "advanced" and enterprise["contracts_left"] == 600


def paid_messages(w: World) -> set[int]:
    """Ids of the bot messages that said 支付成功 (they are edited into the next screen later)."""
    return {m["message_id"] for m in w.fake.bot_log if m["chat"]["id"] == w.buyer.id and PAID in text_of(m)}


# --- 1. the whole purchase -------------------------------------------------------------------------

async def test_whole_advanced_purchase_with_the_bot_as_a_process(world: World) -> None:
    ent_id = await world.seed_enterprise()
    await world.start_bot()

    await buy_until_confirmation(world)
    invoice = await submit_and_pay(world)
    paid = await world.push(world.fake.successful_payment_update(world.buyer, invoice["message_id"]), PAID)
    assert "请及时认证并绑定企业使用" in text_of(paid)
    [order] = await world.orders()
    assert order["status"] == "paid"
    await bind_and_check(world, ent_id)

    assert await world.bot.stop() == 0, world.bot.report()  # SIGTERM: a clean exit
    assert not [line for line in world.bot.stderr if "Traceback" in line], world.bot.report()
    # The process's collector settings (bot.runtime.gc_tuning), applied once start-up was done.
    assert [line for line in world.bot.stderr if "gc.tuned thresholds=50000,20,10 frozen=" in line], world.bot.report()


# --- 2. hard kills ---------------------------------------------------------------------------------

async def test_a_hard_kill_mid_flow_resumes_at_the_same_step(world: World) -> None:
    ent_id = await world.seed_enterprise()
    first = await world.start_bot()
    confirmation = await buy_until_confirmation(world)
    # The screen goes out before the step is stored: wait until it is, and the update is done.
    await wait_until(lambda: world.at_rest("Buy:confirm", phone=DEMO_PHONE), "the confirmation step stored")
    assert await first.kill() == -9

    await world.start_bot()
    again = await world.send("你好", "订单确认")  # an unexpected text: the same step, shown again
    assert "请使用下方按钮" in text_of(again)
    assert screen_of(again) == screen_of(confirmation), "the cart changed across the restart"

    async def tap_submit_on_the_old_confirmation() -> None:
        [submit] = [b for row in confirmation["reply_markup"]["inline_keyboard"] for b in row
                    if b["text"] == "提交订单"]
        update = world.fake.callback_update(world.buyer, confirmation["message_id"], submit["callback_data"])
        await world.push(update, is_invoice)

    invoice = await submit_and_pay(world, submit=tap_submit_on_the_old_confirmation)
    await world.push(world.fake.successful_payment_update(world.buyer, invoice["message_id"]), PAID)
    await bind_and_check(world, ent_id)
    assert len(paid_messages(world)) == 1


async def crash_while_confirming_payment(w: World) -> str:
    """Buy until paid, but kill -9 the process the moment it sends 支付成功: the payment is
    applied in Redis, the buyer has not been told, the conversation's step was never stored.
    Then start a new process and let it handle the payment notice again. Returns the enterprise id."""
    ent_id = await w.seed_enterprise()
    dying = await w.start_bot()
    await buy_until_confirmation(w)
    invoice = await submit_and_pay(w)

    real_call = w.fake.call

    async def call(method: str, params: JSON) -> Any:
        if method.lower() == "sendmessage" and PAID in str(params.get("text")) and dying.running:
            dying.proc.kill()
            raise FakeApiError(502, "Bad Gateway")  # never reaches the chat
        return await real_call(method, params)

    w.fake.call = call  # type: ignore[method-assign]
    payment = w.fake.push_update(w.fake.successful_payment_update(w.buyer, invoice["message_id"]))
    try:
        assert await asyncio.wait_for(dying.proc.wait(), STEP_TIMEOUT) == -9
    except TimeoutError:
        raise AssertionError(w.failure("the bot never sent 支付成功")) from None
    finally:
        w.fake.call = real_call  # type: ignore[method-assign]
    await dying.kill()
    [order] = await w.orders()
    assert order["status"] == "paid" and not paid_messages(w)

    await w.start_bot()
    # Polling confirms an update only once handled, so Telegram delivers this one again.
    assert any(u["update_id"] == payment["update_id"] for u in w.fake.pending_updates)
    update_id = payment["update_id"]
    # The killed process held the buyer's lock: it expires within LOCK_TTL_MS (8 s; measured by
    # tests/reliability/test_money_transport.py). Fast-forward that expiry here.
    await w.redis.delete(w.fsm_key("lock"))
    try:
        await wait_until(lambda: w.handled(update_id), "the payment notice handled by the new process")
    except AssertionError as exc:
        raise AssertionError(w.failure(str(exc))) from None
    return ent_id


async def test_a_hard_kill_between_payment_and_its_confirmation_applies_it_once(world: World) -> None:
    ent_id = await crash_while_confirming_payment(world)

    [order] = await world.orders()
    assert order["status"] == "paid"
    assert [event["kind"] for event in order["events"]].count("paid") == 1
    assert await world.redis.get(keys.charge(order["charge_id"])) == order["id"]
    assert await world.redis.llen(keys.refunds()) == 0, "a repeated notice must not be kept for a refund"
    # The new process tells the buyer, once: the first 支付成功 died with the old one.
    assert len(paid_messages(world)) == 1, world.failure(f"支付成功 sent {len(paid_messages(world))} times")
    await bind_and_check(world, ent_id)
    assert len(paid_messages(world)) == 1


# --- 3. fail fast ----------------------------------------------------------------------------------

async def _fails_fast(case: str, env: dict[str, str], *mentions: str) -> str | None:
    """None when `python -m bot run` exits non-zero with one stderr line naming `mentions`."""
    try:
        code, _out, err = await run_cli("run", env=env)
    except AssertionError as exc:
        return f"{case}: {exc}"
    lines = err.strip().splitlines()
    if code == 0 or len(lines) != 1 or "Traceback" in err or not all(m in err for m in mentions):
        return f"{case}: exit {code}, want non-zero and one stderr line with {mentions}; stderr:\n{err}"
    return None


async def test_run_fails_fast_with_one_line(world: World, tmp_path: Path) -> None:
    catalog = (ROOT / "config" / "catalog.toml").read_text(encoding="utf-8")
    bad = catalog.replace("price_per_year_fen = 480_000", "price_per_year_fen = -480_000")
    assert bad != catalog
    (tmp_path / "catalog.toml").write_text(bad, encoding="utf-8")
    closed_port = "http://127.0.0.1:1"
    # One after the other: on a small busy box, parallel start-ups only slow each other down.
    problems = [
        await _fails_fast("no BOT_TOKEN", clean_env(REDIS_URL=TEST_REDIS_URL, TELEGRAM_API_BASE=world.base_url),
                          "BOT_TOKEN"),
        await _fails_fast("Redis not answering", world.env(REDIS_URL="redis://127.0.0.1:1/0"),
                          "Redis", "127.0.0.1:1"),
        await _fails_fast("negative price in the catalog", world.env(CATALOG_PATH=str(tmp_path / "catalog.toml")),
                          "price_per_year_fen"),
        await _fails_fast("token rejected by the Bot API", world.env(BOT_TOKEN=f"{world.fake.bot_id}:WRONG"),
                          "BOT_TOKEN", "rejected"),
        await _fails_fast("Bot API not answering", world.env(TELEGRAM_API_BASE=closed_port), closed_port),
        await _fails_fast("negative collector threshold", world.env(GC_THRESHOLDS="[-1,10,10]"), "GC_THRESHOLDS"),
    ]
    assert not any(problems), "\n\n".join(p for p in problems if p)
    assert not world.fake.calls_of("getUpdates"), "a process that failed to start polled anyway"
