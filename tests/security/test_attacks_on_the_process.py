"""Attacked from outside: `python -m bot run` against the fake Bot API over a socket,
its web port reached over HTTP, as docs/security.md describes. One process for the attacks on
the chat and on /metrics with a token; one with /metrics on an internal listener."""
from __future__ import annotations

import asyncio
import re

import aiohttp
from esign_devkit.testing.fake_telegram import JSON, FakeUser

from services.phones import mask_phone
from tests.test_process import (
    DEMO_PHONE,
    START_TIMEOUT,
    BotProcess,
    World,
    free_port,
    text_of,
    wait_until,
    world,  # noqa: F401 (the fixture)
)

TOKEN = "attack-test-metrics-token-0123456789"
GROUP = -1005550001111
RLO = "\u202e"


async def start(w: World, **env: str) -> BotProcess:
    process = BotProcess(w.env(**env), name=f"bot process #{len(w.processes) + 1}")
    w.processes.append(process)
    started = len(w.fake.calls_of("deleteWebhook"))
    await process.start()

    async def polling() -> bool:
        if not process.running:
            raise AssertionError(f"{process.name} exited at start-up\n{process.report()}")
        return len(w.fake.calls_of("deleteWebhook")) > started

    await wait_until(polling, f"{process.name} to poll", START_TIMEOUT)

    async def serving() -> bool:  # the web app starts right after the first deleteWebhook
        return any('"web.start"' in line for line in process.stderr)

    await wait_until(serving, f"{process.name} to serve its web port", START_TIMEOUT)
    return process


STEPS = (("购买套餐", "高级版：¥4,800.00/年"), ("立即购买", "版本选购"), (re.compile("^高级版"), "请选择购买时长"),
         (re.compile("^1年"), "是否加购合同加量包"), (re.compile("^不加购合同加量包"), "产品选购"), ("立即购买", "企业名称"))


async def said(w: World, user: FakeUser, update, expected: str | tuple[str, ...]) -> JSON:
    since = len(w.fake.bot_log)
    w.fake.push_update(update)
    wanted = (expected,) if isinstance(expected, str) else expected
    try:
        return await w.fake.wait_for_message(user.id, lambda m: any(e in text_of(m) for e in wanted), 10, since=since)
    except TimeoutError:
        raise AssertionError(f"no {expected!r} for user {user.id}\n{w.bot.report()}") from None


async def to_phone_step(w: World, user: FakeUser) -> None:
    await said(w, user, w.fake.message_update(user, "/start"), "欢迎使用腾讯电子签")
    for label, expected in STEPS:
        await said(w, user, w.fake.click(user, label), expected)
    await said(w, user, w.fake.message_update(user, "深圳示例科技有限公司"), "验证手机号")


async def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session, session.get(url, headers=headers or {}) as resp:
        return resp.status, await resp.text()


async def test_attacks_on_a_running_bot(world: World) -> None:  # noqa: F811
    w = world
    web_port = free_port()
    bot = await start(w, METRICS_TOKEN=TOKEN, WEB_PORT=str(web_port))
    metrics = f"http://127.0.0.1:{web_port}/metrics"

    # 18.3: /metrics from outside, without and with the token.
    for headers in ({}, {"Authorization": "Bearer guess"}, {"Authorization": f"Basic {TOKEN}"}):
        status, body = await get(metrics, headers)
        assert status == 401 and "esign_" not in body, (headers, status)
    status, body = await get(metrics, {"Authorization": f"Bearer {TOKEN}"})
    assert status == 200
    for series in ("process_resident_memory_bytes", "process_start_time_seconds", "python_gc_collections_total",
                   'esign_telegram_retry_after_total{method="sendMessage"} 0.0',
                   'esign_scheduler_runs_total{outcome="failed"} 0.0', "esign_conversation_lock_wait_seconds_bucket",
                   'esign_web_request_seconds_count{route="/metrics"}'):
        assert series in body, series

    # 18.5: added to a stranger's group, the bot leaves and says nothing there.
    w.fake.add_chat(GROUP, type="supergroup", title="广告群")
    stranger = FakeUser(id=7_100_000_001, first_name="Spam", language_code="zh-hans")
    w.fake.push_update(w.fake.my_chat_member_update(stranger, GROUP, "member"))
    await wait_until(lambda: asyncio.sleep(0, GROUP in w.fake.left), "the bot to leave the group")
    w.fake.push_update(w.fake.message_update(stranger, "/start", chat_id=GROUP))
    await said(w, stranger, w.fake.message_update(stranger, "/start"), "欢迎使用腾讯电子签")  # its private chat still works
    await asyncio.sleep(0.5)
    assert w.fake.messages(GROUP, from_bot=True) == []

    # 18.4: an enterprise name with a direction override is refused, clearly.
    victim = w.buyer
    await said(w, victim, w.fake.message_update(victim, "/start"), "欢迎使用腾讯电子签")
    for label, expected in STEPS:
        await said(w, victim, w.fake.click(victim, label), expected)
    await said(w, victim, w.fake.message_update(victim, f"深圳{RLO}moc.live有限公司"), "文字方向控制符")
    await said(w, victim, w.fake.message_update(victim, "深圳示例科技有限公司"), "验证手机号")

    # 18.1: the victim has a live code; strangers type the victim's number meanwhile. None of
    # them gets an SMS sent (the vendor's 30 s spacing per phone) and the victim's code still works.
    since = len(bot.stdout)
    await said(w, victim, w.fake.contact_update(victim), "验证码已发送至")
    code = await bot.code_for(mask_phone(DEMO_PHONE), since=since)
    outcomes = []
    for n in range(5):
        attacker = FakeUser(id=7_200_000_000 + n, first_name=f"A{n}", language_code="zh-hans")
        await to_phone_step(w, attacker)
        reply = await said(w, attacker, w.fake.message_update(attacker, "138 0013 8000"), ("过于频繁", "验证码已发送至"))
        outcomes.append(text_of(reply))
    assert all("验证码发送过于频繁" in o for o in outcomes), outcomes
    assert sum(bool(re.match(r"^SMS to ", line)) for line in bot.stdout[since:]) == 1
    await said(w, victim, w.fake.message_update(victim, code), "订单确认")

    assert not [line for line in bot.stderr if "Traceback" in line], bot.report()
    assert not [line for line in bot.stderr + bot.stdout if "13800138000" in line], "a phone in clear in the logs"


async def test_metrics_on_an_internal_listener_only(world: World) -> None:  # noqa: F811
    web_port, metrics_port = free_port(), free_port()
    await start(world, METRICS_PORT=str(metrics_port), WEB_PORT=str(web_port))
    status, _ = await get(f"http://127.0.0.1:{web_port}/metrics")
    assert status == 404
    status, body = await get(f"http://127.0.0.1:{metrics_port}/metrics")
    assert status == 200 and "process_cpu_seconds_total" in body
    status, _ = await get(f"http://127.0.0.1:{web_port}/healthz")
    assert status == 200
