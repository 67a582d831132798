"""F12 with the bot as a process: `python -m bot run` serves the one web app on WEB_HOST/WEB_PORT
in polling mode (beside the long polling) and in webhook mode (the webhook on the same app).
The Bot API is the fake one over a socket; Redis is the tests' database."""
from __future__ import annotations

import asyncio
import os
import re
import sys
from pathlib import Path

import aiohttp
import pytest
from esign_devkit.testing.bot_api_server import serve_bot_api
from esign_devkit.testing.fake_telegram import FakeTelegram, FakeUser

from config.settings import Settings
from tests.conftest import TEST_REDIS_URL
from tests.web.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 30.0
LINK = re.compile(r"http://127\.0\.0\.1:\d+/checkout/[A-Za-z0-9_-]{32}")


def clean_env(**overrides: str) -> dict[str, str]:
    settings_vars = {name.upper() for name in Settings.model_fields}
    env = {k: v for k, v in os.environ.items() if k.upper() not in settings_vars}
    return {**env, "PYTHONUNBUFFERED": "1", **overrides}


class Process:
    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.output: list[str] = []
        self.proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task | None = None

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "run", cwd=ROOT, env=self.env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for raw in self.proc.stdout:
            self.output.append(raw.decode(errors="replace").rstrip("\n"))

    async def stop(self) -> None:
        if self.proc and self.proc.returncode is None:
            self.proc.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), 5)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        if self._reader:
            await asyncio.wait([self._reader], timeout=5)

    def report(self) -> str:
        return "\n".join(f"    {line}" for line in self.output[-20:])


async def wait_healthy(base: str, process: Process) -> None:
    deadline = asyncio.get_running_loop().time() + START_TIMEOUT
    async with aiohttp.ClientSession() as session:
        while True:
            if process.proc.returncode is not None:
                raise AssertionError(f"the bot exited ({process.proc.returncode}):\n{process.report()}")
            try:
                async with session.get(f"{base}/healthz") as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"/healthz never answered at {base}:\n{process.report()}")
            await asyncio.sleep(0.2)


@pytest.fixture
async def fake_api(redis):
    fake = FakeTelegram()
    token = f"{fake.bot_id}:TEST"
    runner, api_base = await serve_bot_api(fake, token)
    yield fake, token, api_base
    await runner.cleanup()


async def test_F12_run_in_polling_mode_serves_the_checkout_pages_beside_the_polling(fake_api):
    fake, token, api_base = fake_api
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    bot = Process(clean_env(BOT_TOKEN=token, TELEGRAM_API_BASE=api_base, REDIS_URL=TEST_REDIS_URL,
                            WEB_HOST="127.0.0.1", WEB_PORT=str(port), PUBLIC_BASE_URL=base, LOG_FORMAT="text"))
    await bot.start()
    try:
        await wait_healthy(base, bot)
        buyer = FakeUser(id=7_000_001, first_name="买家", language_code="zh-hans", phone="+8613912340001")
        fake.register_user(buyer)
        for step in ("/start", "购买套餐", "立即购买", re.compile("^专业版")):
            since = len(fake.bot_log)
            fake.push_update(fake.message_update(buyer, step) if isinstance(step, str) and step.startswith("/")
                             else fake.click(buyer, step))
            reply = await fake.wait_for_message(buyer.id, since=since, timeout=10)
        link = LINK.search(reply["text"])
        assert link, reply["text"]
        async with aiohttp.ClientSession() as session:
            async with session.get(link.group(0)) as resp:
                assert resp.status == 200 and "专业版" in await resp.text()
            async with session.get(link.group(0)[:-2] + "zz") as resp:
                assert resp.status == 404
        token_part = link.group(0).rsplit("/", 1)[1]
        assert not any(token_part in line for line in bot.output), "a checkout token was logged"
        assert any("/checkout/<token>" in line for line in bot.output)  # the access log, redacted
    finally:
        await bot.stop()


async def test_F12_run_in_webhook_mode_serves_the_webhook_and_the_pages_on_one_port(fake_api):
    fake, token, api_base = fake_api
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    bot = Process(clean_env(BOT_TOKEN=token, TELEGRAM_API_BASE=api_base, REDIS_URL=TEST_REDIS_URL,
                            WEB_HOST="127.0.0.1", WEB_PORT=str(port), PUBLIC_BASE_URL=base,
                            WEBHOOK_URL="https://bot.example.test", WEBHOOK_SECRET="s3cret-token"))
    await bot.start()
    try:
        await wait_healthy(base, bot)
        for _ in range(300):  # the webhook is registered right after the app listens (30 s at most)
            if fake.webhook_url:
                break
            await asyncio.sleep(0.1)
        assert fake.webhook_url == "https://bot.example.test/telegram/webhook"
        buyer = FakeUser(id=7_000_002, first_name="买家", language_code="zh-hans")
        fake.register_user(buyer)
        update = fake.message_update(buyer, "/start").model_dump(mode="json", exclude_none=True)
        async with aiohttp.ClientSession() as session:
            async with session.post(f"{base}/telegram/webhook", json=update) as resp:
                assert resp.status == 401
            since = len(fake.bot_log)
            async with session.post(f"{base}/telegram/webhook", json=update,
                                    headers={"X-Telegram-Bot-Api-Secret-Token": "s3cret-token"}) as resp:
                assert resp.status == 200
            reply = await fake.wait_for_message(buyer.id, since=since, timeout=10)
            assert "欢迎使用腾讯电子签" in reply["text"]
            async with session.get(f"{base}/checkout/not-a-real-token-at-all-xxxxxx") as resp:
                assert resp.status == 404 and "链接无效" in await resp.text()
    finally:
        await bot.stop()
