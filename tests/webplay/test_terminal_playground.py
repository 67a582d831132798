"""The terminal playground (python -m bot playground): customer service works without a real
staff group (you play the agent with /agent), the checkout links follow WEB_PORT, and the demo
phone is not locked out after a few codes of exploring."""
from __future__ import annotations

import io
import re
from pathlib import Path

from esign_devkit.playground import AGENT_ALIAS, Playground, web_settings
from esign_devkit.playground_env import generous_codes
from esign_devkit.testing.harness import BotHarness
from esign_devkit.testing.scenario import Recorder, format_result, load_text, run_scenario
from esign_devkit.webplay.server import checkout_port_for

from config.settings import Settings
from services.codes import CodePolicy

DEMO_PHONE = "+8613800138000"


def terminal(harness: BotHarness, lang: str = "zh") -> tuple[Playground, io.StringIO]:
    """The playground's loop on the harness's dispatcher, printing into a buffer."""
    buyer = harness.user(lang, phone=DEMO_PHONE, name="Playground")
    out = io.StringIO()
    return Playground(harness.telegram, harness.dp, harness.bot, buyer.fake, out=out, sms=harness.sms.gateway,
                      app=harness.app), out


def said_since(out: io.StringIO, mark: int) -> str:
    return out.getvalue()[mark:]


def press(out: io.StringIO, label: str) -> str:
    """The number the playground printed for the newest button with this label."""
    found = re.findall(r"\[(\d+)\] " + re.escape(label) + r"(?:\s|$)", out.getvalue())
    assert found, f"no button {label!r} printed:\n{out.getvalue()[-800:]}"
    return found[-1]


async def test_F11_the_terminal_plays_the_agent_of_a_consultation(esign_harness):
    play, out = terminal(esign_harness)
    await play.handle("/start")
    await play.handle(press(out, "购买套餐"))
    await play.handle(press(out, "立即购买"))
    await play.handle(press(out, "旗舰版 · ¥59,800.00/年"))
    await play.handle(press(out, "购买咨询"))
    assert "🛎 🆕 工单" in out.getvalue()  # the intake card, from the staff group

    mark = len(out.getvalue())
    await play.handle("/agent")
    assert "等待接单的工单（1）" in said_since(out, mark)  # open consultations

    mark = len(out.getvalue())
    await play.handle("/agent claim")
    assert f"🤖 👩‍💼 {AGENT_ALIAS}已接入" in said_since(out, mark)

    mark = len(out.getvalue())
    await play.handle("/agent reply 您好，旗舰版需要几年？")
    assert f"🤖 💬 {AGENT_ALIAS}：\n您好，旗舰版需要几年？" in said_since(out, mark)

    mark = len(out.getvalue())
    await play.handle("一年")
    assert "🛎 👤 客户 Playground：\n   一年" in said_since(out, mark)  # to the agent, not "use the buttons"
    assert "请使用下方按钮" not in said_since(out, mark)

    mark = len(out.getvalue())
    await play.handle("/agent quote flagship 1")
    assert f"🧾 {AGENT_ALIAS}为您创建了订单" in said_since(out, mark)

    mark = len(out.getvalue())
    await play.handle("/agent close")
    assert f"✅ {AGENT_ALIAS}已结束本次咨询" in said_since(out, mark)
    ticket = await esign_harness.ticket_of(play.user)
    assert ticket.status.value == "resolved"


async def test_F11_a_recorded_consultation_replays_with_its_agent_steps(esign_harness, redis):
    recorder = Recorder(lang="zh", phone=DEMO_PHONE, enterprises=[], name="consultation")
    play, out = terminal(esign_harness)
    play.recorder = recorder
    await play.handle("/agent")  # before any consultation: shown, not recorded (no topic yet)
    await play.handle("/start")
    await play.handle(press(out, "联系客服"))
    for line in ("/agent", "/agent claim", "/agent reply 您好", "请问怎么开发票", "/agent close"):
        await play.handle(line)
    text = recorder.text()
    assert "- agent_command: /alias 客服小李" in text and "- agent_send: 您好" in text
    assert text.index("/alias") < text.index("/queue")

    await redis.flushdb()
    [scenario] = load_text(text)
    result = await run_scenario(scenario, redis)
    assert result.status == "passed", format_result(result)


async def test_F11_agent_commands_before_any_consultation_say_what_to_do(esign_harness):
    play, out = terminal(esign_harness)
    await play.handle("/agent claim")
    assert "(no consultation yet: tap 联系客服 or 购买咨询 first)" in out.getvalue()


async def test_F11_without_a_staff_group_agent_says_so(redis, clock):
    harness = BotHarness(redis, clock=clock, staff_group=False)
    try:
        play, out = terminal(harness)
        await play.handle("/agent")
        assert "no staff group" in out.getvalue()
    finally:
        await harness.close()


# --- the web app's port and the links -----------------------------------------------------------


def settings(**values) -> Settings:
    return Settings(_env_file=None, bot_token=None, code_secret="test-secret", **values)


def test_WEB_PORT_moves_the_links_too():
    moved, note = web_settings(settings(web_port=18_765), port_free=lambda host, port: True)
    assert (moved.web_port, moved.public_base_url, note) == (18_765, "http://127.0.0.1:18765", None)


def test_a_taken_port_is_replaced_and_the_links_follow():
    moved, note = web_settings(settings(web_port=18_765), port_free=lambda host, port: False)
    assert moved.web_port != 18_765 and moved.public_base_url == f"http://127.0.0.1:{moved.web_port}"
    assert note and "18765 is taken" in note


def test_a_public_base_url_given_is_kept():
    kept, note = web_settings(settings(web_port=18_765, public_base_url="https://tunnel.example"),
                              port_free=lambda host, port: True)
    assert kept.public_base_url == "https://tunnel.example" and note is None


async def test_the_chat_s_checkout_link_carries_WEB_PORT(redis, clock):
    moved, _ = web_settings(settings(web_port=18_765), port_free=lambda host, port: True)
    harness = BotHarness(redis, clock=clock, settings=moved)
    try:
        buyer = harness.user()
        await buyer.send("/start")
        await buyer.tap("购买套餐")
        await buyer.tap("立即购买")
        screen = await buyer.tap(re.compile("^专业版 · "))
        assert "http://127.0.0.1:18765/checkout/" in screen.text
    finally:
        await harness.close()


def test_the_browser_playground_s_checkout_follows_WEB_PORT():
    assert checkout_port_for(settings(web_port=18_765), "127.0.0.1", 8000) == 18_765
    assert checkout_port_for(settings(), "127.0.0.1", 8000) == 8001  # unset: next to the page


# --- the demo phone's codes -------------------------------------------------------------------------


async def test_the_demo_phone_gets_many_codes_an_hour_in_the_playground(esign_harness):
    h = esign_harness
    assert CodePolicy().phone_per_hour == 5  # production: the SMS vendor's limit
    h.app.codes.policy = generous_codes(h.app.codes.policy)
    buyer = h.user(phone=DEMO_PHONE)
    sent = 0
    for _ in range(12):  # a dozen tries of the purchase in one hour of exploring
        await buyer.send("/start")
        await buyer.tap("费用管理")
        await buyer.share_contact()
        sent = h.sms.count(DEMO_PHONE)
        h.advance(minutes=2)  # past the resend cool-down, well within the hour
    assert sent == 12, buyer.screen


def test_generous_codes_keep_the_resend_cool_down():
    policy = generous_codes(CodePolicy())
    assert policy.cooldown_seconds == CodePolicy().cooldown_seconds
    assert policy.phone_per_hour >= 100 and policy.unproven_per_hour < policy.phone_per_hour


# --- the README's sample session ------------------------------------------------------------------


def readme_home() -> str:
    """The home screen in the README's sample session: from the bot's first message to `you>`."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    session = readme.split("$ bash scripts/playground.sh", 1)[1].split("```", 1)[0]
    home = session[session.index("🤖 "):session.index("you>")]
    return home.strip()


async def test_the_readme_shows_the_real_home(esign_harness):
    play, out = terminal(esign_harness)
    await play.handle("/start")
    real = out.getvalue().strip()
    assert readme_home() == real, f"README.md's sample session shows:\n{readme_home()}\nthe playground prints:\n{real}"
    assert len(re.findall(r"\[\d+\]", real)) == 9  # every home button, numbered


def test_docs_cite_the_project_s_own_rule_book():
    root = Path(__file__).resolve().parents[2]
    rules = (root / "docs" / "rules.md").read_text(encoding="utf-8")
    for n in range(1, 22):
        assert f"**R{n}**" in rules, f"docs/rules.md does not state R{n}"
    for n in range(1, 13):
        assert f"**F{n}**" in rules, f"docs/rules.md does not state F{n}"
    files = [path for folder in ("bot", "services", "config", "devkit", "tests", "docs", "scenarios")
             for path in (root / folder).rglob("*")
             if path.suffix in (".py", ".md", ".toml", ".yaml") and path.name != Path(__file__).name]
    cited = [str(path.relative_to(root)) for path in files
             if "DOMAIN.md" in path.read_text(encoding="utf-8", errors="replace")]
    readme = (root / "README.md").read_text(encoding="utf-8")
    assert "DOMAIN.md" not in readme and "docs/rules.md" in readme
    assert cited == [], f"cite docs/rules.md, not a rule book outside the repository: {cited}"


# --- the browser playground's agents ---------------------------------------------------------------


async def test_F11_the_page_s_agents_are_seen_under_their_names(playground):
    world = playground
    buyer_id = next(iter(world.buyers))
    [agent] = world.agents.values()
    await world.send_text(buyer_id, None, "/start")
    message = world.telegram.last_message(buyer_id, from_bot=True)
    button = next(b for row in message["reply_markup"]["inline_keyboard"] for b in row if b["text"] == "联系客服")
    await world.press(buyer_id, None, message["message_id"], button["callback_data"])
    customer = await world.app.support.customer(buyer_id)
    await world.send_text(world.staff_chat_id, agent.id, "您好", thread_id=customer.topic_id)
    said = world.telegram.last_message(buyer_id, from_bot=True)["text"]
    assert said == f"💬 {agent.name}：\n您好"  # the name the page shows, never a bare 客服
