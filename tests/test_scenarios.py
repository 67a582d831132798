"""The scenario files: every file in scenarios/ passes (so CI runs them), a broken expectation
fails with a readable report, `python -m bot flowtest` exits and writes JUnit XML as documented,
and a recorded playground session replays."""
from __future__ import annotations

import asyncio
import io
import re
import subprocess
import sys
import threading
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from esign_devkit import flowtest
from esign_devkit.testing.scenario import ScenarioError, format_result, load_file, load_text, run_scenario

from bot.runtime.redis_client import redis_from_url
from tests.conftest import TEST_REDIS_URL

ROOT = Path(__file__).resolve().parent.parent
SCENARIO_FILES = sorted((ROOT / "scenarios").glob("*.yaml"))
NOWHERE = "redis://127.0.0.1:1/0"  # no Redis answers there: flowtest uses its in-process store


def test_the_examples_are_there():
    assert len(SCENARIO_FILES) >= 6


@pytest.mark.parametrize("path", SCENARIO_FILES, ids=lambda p: p.stem)
async def test_scenario_file_passes(path, esign_scenarios):
    await esign_scenarios(path)  # the plugin's fixture: a failure shows the flowtest report


async def test_run_scenarios_fails_with_the_report(tmp_path, esign_scenarios):
    (tmp_path / "broken.yaml").write_text(BROKEN, encoding="utf-8")
    with pytest.raises(pytest.fail.Exception, match="expected text matching /这句话不在屏幕上/"):
        await esign_scenarios(tmp_path / "broken.yaml")


BROKEN = """\
name: a broken expectation
users:
  buyer: {lang: zh}
steps:
  - send: /start
  - expect: 欢迎使用腾讯电子签
  - tap: 购买套餐
  - expect: 这句话不在屏幕上
  - tap: 立即购买
"""


async def test_a_broken_expectation_fails_with_the_screen_found(redis):
    [scenario] = load_text(BROKEN)
    result = await run_scenario(scenario, redis)
    assert result.status == "failed"
    assert [r.status for r in result.steps] == ["passed", "passed", "passed", "failed", "skipped"]
    report = format_result(result)
    assert "FAIL  line 8    expect 这句话不在屏幕上" in report
    assert "expected text matching /这句话不在屏幕上/" in report
    assert "found on the screen:" in report
    assert "📦 购买套餐" in report and "[立即购买]" in report  # the screen, with its buttons
    assert "skip  line 9    tap 立即购买" in report
    assert "FAILED: 3 ok, 1 failed, 0 errors, 1 skipped" in report


async def test_a_missing_button_points_at_the_locale_files(redis):
    [scenario] = load_text("steps:\n  - send: /start\n  - expect_buttons: [我的订单, 购买套餐X]\n")
    result = await run_scenario(scenario, redis)
    report = format_result(result)
    assert "expected button '购买套餐X'" in report
    assert "'购买套餐X' is no text of config/locales/*.toml" in report
    assert "the closest button on the screen, '购买套餐', is btn.buy_plan in config/locales/zh.toml" in report


@pytest.mark.parametrize(("text", "message"), [
    ("steps:\n  - send: /start\n  - tapp: 购买套餐\n", ":3: unknown step 'tapp'"),
    ("steps:\n  - expect: ([\n", ":2: expect:"),
    ("steps:\n  - pay: now\n", ":2: pay: takes no value"),
    ("steps:\n  - clock: soon\n", "is not a duration"),
    ("steps:\n  - user: carol\n", "no user 'carol'"),
    ("steps:\n  - expect_order: shipped\n", ":2: expect_order:"),
    ("users:\n  buyer: {langue: zh}\nsteps: [send: /start]\n", "fixtures:"),
    ("name: nothing to do\n", "`steps` must be a list"),
    ("steps: [send: /start\n", "not valid YAML"),
    ("steps:\n  - jobs: now\n", ":2: jobs: takes no value"),
    ("agents:\n  li: {alias: 小李}\nsteps:\n  - agent: wang\n", "no agent 'wang'"),
    ("steps:\n  - agent: li\n", "declare them under `agents:`"),
    ("agents:\n  li: {nickname: 小李}\nsteps: [send: /start]\n", "fixtures:"),
    ("steps:\n  - agent_send\n", ":2: agent_send: needs a value"),
])
def test_a_bad_file_is_refused_with_its_line(text, message):
    with pytest.raises(ScenarioError, match=re.escape(message)):
        load_text(text)


def test_steps_keep_the_text_as_written():
    [scenario] = load_text("steps:\n  - send: 012345\n  - send: yes\n  - tap: /^高级版/\n  - clock: 2 days\n")
    assert [s.arg for s in scenario.steps[:2]] == ["012345", "yes"]  # not the number 5349, not True
    assert scenario.steps[2].arg == re.compile("^高级版")
    assert scenario.steps[3].arg.days == 2


def test_agent_steps_without_agents_use_one_default_agent():
    [scenario] = load_text("steps:\n  - send: /start\n  - agent_command: /close\n  - jobs\n")
    assert list(scenario.agents) == ["agent"] and scenario.agents["agent"].alias is None
    assert [s.kind for s in scenario.steps] == ["send", "agent_command", "jobs"]
    [scenario] = load_text("steps:\n  - send: /start\n")
    assert scenario.agents == {}


async def test_F11_an_agent_step_fails_with_the_topic_it_looked_at(redis):
    [scenario] = load_text(
        "agents:\n  li: {alias: 客服小李}\nsteps:\n  - send: /start\n  - tap: 联系客服\n"
        "  - agent_expect: 这句话不在话题里\n  - agent_tap: 🙋 接单\n"
    )
    result = await run_scenario(scenario, redis)
    assert [r.status for r in result.steps] == ["passed", "passed", "failed", "skipped"]
    assert "in the topic" in result.steps[2].message and "待接单" in result.steps[2].message


# --- the command -----------------------------------------------------------------------------


def flowtest_main(*args: str) -> tuple[int, str]:
    out = io.StringIO()
    return flowtest.main(list(args), out=out), out.getvalue()


def test_flowtest_runs_a_directory_and_writes_junit(tmp_path):
    (tmp_path / "broken.yaml").write_text(BROKEN, encoding="utf-8")
    (tmp_path / "ok.yaml").write_text("steps:\n  - send: /start\n  - expect: 欢迎\n", encoding="utf-8")
    junit = tmp_path / "report.xml"
    code, out = flowtest_main(str(tmp_path), "--junit", str(junit), "--redis", TEST_REDIS_URL)
    assert code == 1
    assert f"Store: Redis {TEST_REDIS_URL}" in out
    assert "FAILED — 2 scenario(s): 1 passed, 1 failed" in out
    suite = ET.parse(junit).getroot().find("testsuite")
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("2", "1", "0")
    failure = suite.find("testcase[@name='a broken expectation']/failure")
    assert failure.get("message") == "line 8: expect 这句话不在屏幕上"
    assert "found on the screen:" in failure.text
    assert suite.find("testcase[@name='ok']/failure") is None
    assert _on_test_redis(lambda r: r.dbsize()) == 0  # emptied after the run


def test_flowtest_without_redis_uses_the_in_process_store():
    code, out = flowtest_main(str(ROOT / "scenarios" / "wrong_code.yaml"), "--redis", NOWHERE)
    assert code == 0, out
    assert "in-process store" in out
    assert "OK — 1 scenario(s): 1 passed, 0 failed" in out


def _on_test_redis(command):
    """One command on the tests' Redis (any topology), from a test without an event loop."""
    async def run():
        client = redis_from_url(TEST_REDIS_URL)
        try:
            return await command(client)
        finally:
            await client.aclose()

    return asyncio.run(run())


def test_flowtest_does_not_empty_a_database_it_did_not_fill(capsys):
    _on_test_redis(lambda r: r.flushdb())
    _on_test_redis(lambda r: r.set("someone-elses-key", "1"))
    try:
        code, _ = flowtest_main(str(ROOT / "scenarios"), "--redis", TEST_REDIS_URL)
        assert code == 2
        assert "holds 1 keys that flowtest did not write" in capsys.readouterr().err
        assert _on_test_redis(lambda r: r.get("someone-elses-key")) == "1"
    finally:
        _on_test_redis(lambda r: r.flushdb())


def test_flowtest_reports_unreadable_files_and_missing_paths(tmp_path, capsys):
    (tmp_path / "bad.yaml").write_text("steps:\n  - dance: now\n", encoding="utf-8")
    code, out = flowtest_main(str(tmp_path), "--redis", NOWHERE)
    assert code == 1
    assert "unknown step 'dance'" in out and "1 file(s) could not be read" in out
    assert flowtest_main(str(tmp_path / "nope.yaml"))[0] == 2
    assert "no such file or directory" in capsys.readouterr().err


def test_python_m_bot_lists_flowtest():
    done = subprocess.run([sys.executable, "-m", "bot", "--help"], cwd=ROOT, capture_output=True, text=True)
    assert "flowtest" in done.stdout


# --- recording -------------------------------------------------------------------------------


def play(record: Path, before_code: str, after_code: str) -> str:
    """Drive `python -m bot playground --record` through piped stdin; the SMS code is read from
    its output and typed in, as a person would."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot", "playground", "--record", str(record)],
        cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1,
    )
    watchdog = threading.Timer(60, proc.kill)
    watchdog.start()
    try:
        proc.stdin.write(before_code)
        proc.stdin.flush()
        seen = []
        for line in proc.stdout:
            seen.append(line)
            if found := re.search(r"验证码是 (\d{6})", line):
                break
        assert found, "".join(seen)
        proc.stdin.write(f"000000\n{found[1]}\n{after_code}")
        proc.stdin.close()
        seen.append(proc.stdout.read())
        assert proc.wait() == 0, "".join(seen)
    finally:
        watchdog.cancel()
    return "".join(seen)


async def test_a_recorded_playground_session_replays(tmp_path, redis):
    record = tmp_path / "session.yaml"
    # 购买套餐 → 立即购买 → 高级版 → 1年 → no pack → 立即购买 → name → share phone; then a wrong
    # code, the code, 提交订单, pay: the demo user is the demo enterprise's super admin, so it is
    # delivered to it at once (R19); then 我的订单.
    output = play(record, "1\n1\n1\n1\n1\n1\n深圳示例科技有限公司\n/contact\n", "1\n/pay\n2\n")
    assert "支付成功，已发货" in output and f"Recorded 14 steps to {record}" in output
    text = record.read_text(encoding="utf-8")
    assert "  - wrong_code\n" in text and "  - code\n" in text and "  - pay\n" in text
    assert not re.search(r"o[0-9a-f]{12}|\d{4}-\d{2}-\d{2}", text)  # no order id, no date
    assert "  - expect: ^✅ 支付成功，已发货！$\n" in text
    [scenario] = load_file(record)
    result = await run_scenario(scenario, redis)
    assert result.passed, "\n" + format_result(result)
    assert sum(1 for s in scenario.steps if s.kind.startswith("expect")) >= 25


def test_a_file_may_hold_several_scenarios():
    first, second = load_text("name: one\nsteps: [send: /start]\n---\nsteps:\n  - send: /start\n  - contact\n")
    assert (first.name, second.name, second.line) == ("one", "scenario #2", 4)
    assert [(s.kind, s.line) for s in second.steps] == [("send", 5), ("contact", 6)]


async def test_a_fixture_the_directory_refuses_is_an_error(redis):
    [scenario] = load_text(
        "enterprises:\n  - name: 坏号码公司\n    members: {'12345': super_admin}\nsteps:\n  - send: /start\n")
    result = await run_scenario(scenario, redis)
    assert result.status == "error"
    report = format_result(result)
    assert "ERR   fixtures: InvalidPhone" in report and "skip  line 5    send /start" in report


def test_steps_given_twice_are_refused_with_the_place() -> None:
    text = "name: twice\nsteps:\n  - send: /start\nsteps:\n  - send: /start\n  - send: hi\n"
    with pytest.raises(ScenarioError, match="`steps` must be given once"):
        load_text(text)
