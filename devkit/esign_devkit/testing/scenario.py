"""Scenario files: conversations written as YAML by people who do not write Python.

    name: 高级版 purchase
    enterprises:
      - name: 深圳示例科技有限公司
        members: {"+8613800138000": super_admin}
    users:
      buyer: {lang: zh, phone: "+8613800138000"}
    steps:
      - send: /start
      - tap: 购买套餐
      - expect: 版本选购
      - expect_buttons: [立即购买, 联系客服]

Agents of the staff forum group (F11) are fixtures too (`agents: {li: {alias: 客服小李}}`); the
`agent_*` steps act in the current user's topic. `jobs` runs one tick of the background task.

This module reads them (`load_file`), runs them on the test harness (`run_scenario`), and
reports: a readable text (`format_result`) and JUnit XML (`junit_xml`). `Recorder` writes a
playground session as a scenario. docs/testing.md is the tutorial; `python -m bot flowtest`
(devkit/esign_devkit/flowtest.py) is the command.
"""
from __future__ import annotations

import difflib
import re
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError
from redis.asyncio import Redis

from esign_devkit.testing.harness import BotHarness, ChatUser, Label, Screen, StaffAgent, StepFailed
from services.clock import FixedClock
from services.enterprises import FREE_EDITION, Enterprise, Role
from services.orders import OrderStatus

# Step kinds and what they take: None (nothing), "text", "label", "labels", "regex", ...
STEPS: dict[str, tuple[str, ...]] = {
    "send": ("text",),              # type a message
    "tap": ("label",),              # press a button: its exact text, or /regex/
    "contact": ("none", "text"),    # share one's own phone (or the given number as one's own)
    "contact_other": ("text",),     # share someone else's contact card
    "code": ("none", "text"),       # type the last SMS code sent to one's phone (or to the given one)
    "wrong_code": ("none",),        # type 6 digits that are not the code
    "pay": ("none",),               # pay the last invoice (pre-checkout, then the payment)
    "expect": ("regex",),           # the screen's text matches the regex
    "expect_buttons": ("labels",),  # these buttons are on the screen
    "expect_order": ("status",),    # the user's newest order is in this status
    "clock": ("duration",),         # move the clock forward: "2 days", "31 minutes"
    "user": ("user",),              # the following steps are this user's
    "jobs": ("none",),              # one tick of the background task (expiry, trials, reminders)
    # The staff forum group (F11): an agent, in the current user's topic.
    "agent": ("agent",),            # the following agent_* steps are this agent's
    "agent_send": ("text",),        # the agent writes in the user's topic (relayed to the user)
    "agent_command": ("text",),     # the agent sends a command there: /close, /claim, /queue ...
    "agent_tap": ("label",),        # the agent presses a button in the topic (🙋 接单 ...)
    "agent_expect": ("regex",),     # a message of the bot in the topic matches the regex
}
AGENT_STEPS = frozenset(k for k in STEPS if k.startswith("agent"))
UNITS = {
    **dict.fromkeys(("d", "day", "days"), "days"),
    **dict.fromkeys(("h", "hour", "hours"), "hours"),
    **dict.fromkeys(("m", "min", "minute", "minutes"), "minutes"),
    **dict.fromkeys(("s", "second", "seconds"), "seconds"),
}
DURATION = re.compile(r"^\+?\s*(\d+(?:\.\d+)?)\s*([a-z]+)$")


class ScenarioError(ValueError):
    """A scenario file that cannot be used; the message names the file and the line."""


class EnterpriseFixture(BaseModel):
    """An enterprise in the directory before the conversation starts."""

    model_config = ConfigDict(extra="forbid")
    name: str
    verified: bool = True
    members: dict[str, Role] = {}  # phone -> super_admin | billing_admin | member
    edition: str | None = None  # edition code: experience (体验版), advanced, professional, flagship
    expires_in_days: int | None = None  # a bought edition's days left (from the scenario clock); default 365
    contracts_left: int | None = None


class UserFixture(BaseModel):
    """A Telegram user chatting with the bot."""

    model_config = ConfigDict(extra="forbid")
    lang: Literal["zh", "en"] = "zh"
    phone: str | None = None  # their own phone (shared with `contact`); generated when absent
    name: str | None = None


class AgentFixture(BaseModel):
    """A customer-service agent in the staff forum group (F11)."""

    model_config = ConfigDict(extra="forbid")
    alias: str | None = None  # how customers see them ("客服小李"); none: "客服"
    name: str | None = None  # their Telegram name, seen by the other agents
    lang: Literal["zh", "en"] = "zh"


@dataclass(frozen=True)
class Step:
    kind: str
    arg: Any  # parsed: str, re.Pattern, list of labels, timedelta, OrderStatus or None
    source: str  # the argument as written, for the report
    line: int

    def __str__(self) -> str:
        return f"{self.kind} {self.source}".rstrip()


@dataclass
class Scenario:
    name: str
    path: Path | None
    line: int
    enterprises: list[EnterpriseFixture]
    users: dict[str, UserFixture]
    steps: list[Step]
    agents: dict[str, AgentFixture] = field(default_factory=dict)

    @property
    def where(self) -> str:
        return f"{self.path or '<text>'}:{self.line}"


# --- reading ---------------------------------------------------------------------------------


def load_file(path: Path | str) -> list[Scenario]:
    """The scenarios of a file (several when it has `---`-separated documents)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioError(f"{path}: {exc.strerror}") from None
    return load_text(text, path)


def load_text(text: str, path: Path | None = None) -> list[Scenario]:
    where = path or "<text>"
    loader = yaml.SafeLoader(text)
    scenarios = []
    try:
        while loader.check_node():
            node = loader.get_node()
            data = loader.construct_document(node)
            if data is not None:
                scenarios.append(_scenario(data, node, path, len(scenarios)))
    except yaml.YAMLError as exc:
        raise ScenarioError(f"{where}: not valid YAML: {exc}") from None
    finally:
        loader.dispose()
    if not scenarios:
        raise ScenarioError(f"{where}: no scenario in the file")
    return scenarios


def _scenario(data: Any, node: yaml.Node, path: Path | None, index: int) -> Scenario:
    line = node.start_mark.line + 1
    where = f"{path or '<text>'}:{line}"
    if not isinstance(data, dict):
        raise ScenarioError(f"{where}: a scenario is a mapping with name, enterprises, users, steps")
    unknown = set(data) - {"name", "enterprises", "users", "agents", "steps"}
    if unknown:
        raise ScenarioError(f"{where}: unknown key(s) {sorted(unknown)}; expected name, enterprises, users, agents, steps")
    try:
        enterprises = [EnterpriseFixture.model_validate(e) for e in data.get("enterprises") or []]
        users = {str(k): UserFixture.model_validate(v or {}) for k, v in (data.get("users") or {"buyer": {}}).items()}
        agents = {str(k): AgentFixture.model_validate(v or {}) for k, v in (data.get("agents") or {}).items()}
    except (ValidationError, AttributeError) as exc:
        raise ScenarioError(f"{where}: fixtures: {exc}") from None
    raw_steps = data.get("steps")
    if not isinstance(raw_steps, list) or not raw_steps:
        raise ScenarioError(f"{where}: `steps` must be a list of steps")
    step_nodes = [v.value for k, v in node.value if k.value == "steps"]
    if len(step_nodes) != 1 or len(step_nodes[0]) != len(raw_steps):
        raise ScenarioError(f"{where}: `steps` must be given once")
    steps = [_step(raw, item, path, users, agents) for raw, item in zip(raw_steps, step_nodes[0], strict=True)]
    if not agents and any(s.kind in AGENT_STEPS for s in steps):
        agents = {"agent": AgentFixture()}  # agent steps without `agents:`: one agent, seen as 客服
    default_name = (path.stem if path else "scenario") + (f" #{index + 1}" if index else "")
    return Scenario(str(data.get("name") or default_name), path, line, enterprises, users, steps, agents)


def _as_written(value: Any, node: yaml.Node) -> Any:
    """Scalars as the author typed them: `send: 012345` is the text 012345, not the number 5349."""
    if value is None:
        return None
    if isinstance(node, yaml.ScalarNode):
        return node.value
    if isinstance(node, yaml.SequenceNode):
        return [_as_written(v, n) for v, n in zip(value, node.value, strict=True)]
    return value


def _step(raw: Any, node: yaml.Node, path: Path | None, users: dict[str, UserFixture],
          agents: dict[str, AgentFixture] | None = None) -> Step:
    line = node.start_mark.line + 1
    where = f"{path or '<text>'}:{line}"
    if isinstance(raw, str):
        kind, value = raw, None
    elif isinstance(raw, dict) and len(raw) == 1 and isinstance(node, yaml.MappingNode):
        kind, value = next(iter(raw.items()))
        value = _as_written(value, node.value[0][1])
    else:
        raise ScenarioError(f"{where}: a step is one `kind: value` (or a bare kind), got {raw!r}")
    if kind not in STEPS:
        raise ScenarioError(f"{where}: unknown step {kind!r}; steps are {', '.join(STEPS)}")
    try:
        arg = _argument(kind, value, users, agents or {})
    except (ValueError, re.error) as exc:
        raise ScenarioError(f"{where}: {kind}: {exc}") from None
    if value is None:
        source = ""
    elif isinstance(value, list):
        source = "[" + ", ".join(map(str, value)) + "]"
    else:
        source = str(value)
    return Step(kind, arg, source.replace("\n", "\\n"), line)  # one line in the report


def _argument(kind: str, value: Any, users: dict[str, UserFixture], agents: dict[str, AgentFixture]) -> Any:
    accepts = STEPS[kind]
    if value is None:
        if "none" not in accepts:
            raise ValueError("needs a value")
        return None
    if accepts == ("none",):
        raise ValueError(f"takes no value (write `- {kind}`)")
    shape = accepts[-1]
    if shape == "labels":
        values = value if isinstance(value, list) else [value]
        return [parse_label(str(v)) for v in values]
    if isinstance(value, (dict, list)):
        raise ValueError(f"expected one value, got {value!r}")
    text = str(value)
    if shape == "label":
        return parse_label(text)
    if shape == "regex":
        return re.compile(text, re.MULTILINE)
    if shape == "status":
        return OrderStatus(text)
    if shape == "duration":
        return parse_duration(text)
    if shape == "user" and text not in users:
        raise ValueError(f"no user {text!r} among the scenario's users {sorted(users)}")
    if shape == "agent" and text not in agents:
        raise ValueError(f"no agent {text!r} among the scenario's agents {sorted(agents)} (declare them under `agents:`)")
    return text


def parse_label(text: str) -> Label:
    """A button label: the exact text, or a regex between slashes (/^高级版/)."""
    if len(text) >= 2 and text.startswith("/") and text.endswith("/"):
        return re.compile(text[1:-1])
    return text


def parse_duration(text: str) -> timedelta:
    match = DURATION.match(text.strip().lower())
    if not match or match[2] not in UNITS:
        raise ValueError(f"{text!r} is not a duration like '2 days', '3 hours', '31 minutes', '90 seconds'")
    return timedelta(**{UNITS[match[2]]: float(match[1])})


# --- running ---------------------------------------------------------------------------------

Status = Literal["passed", "failed", "error", "skipped"]


@dataclass
class StepResult:
    step: Step
    status: Status
    message: str = ""


@dataclass
class ScenarioResult:
    scenario: Scenario
    steps: list[StepResult] = field(default_factory=list)
    setup_error: str | None = None
    seconds: float = 0.0

    @property
    def status(self) -> Status:
        if self.setup_error:
            return "error"
        for wanted in ("error", "failed"):
            if any(r.status == wanted for r in self.steps):
                return wanted  # type: ignore[return-value]
        return "passed"

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    @property
    def first_problem(self) -> StepResult | None:
        return next((r for r in self.steps if r.status in ("failed", "error")), None)


class ScenarioRun:
    """One scenario on a fresh harness: fixtures first, then the steps until one fails."""

    def __init__(self, scenario: Scenario, harness: BotHarness) -> None:
        self.scenario = scenario
        self.harness = harness
        self.users: dict[str, ChatUser] = {}
        self.current = next(iter(scenario.users))
        self.agents: dict[str, StaffAgent] = {}
        self.current_agent = next(iter(scenario.agents), None)

    async def setup(self) -> None:
        for fixture in self.scenario.enterprises:
            await seed_enterprise(self.harness, fixture)
        for name, user in self.scenario.users.items():
            self.users[name] = self.harness.user(user.lang, phone=user.phone, name=user.name or name)
        for name, agent in self.scenario.agents.items():
            self.agents[name] = self.harness.agent(name=agent.name or name, alias=agent.alias, lang=agent.lang)

    async def perform(self, step: Step) -> None:
        user, harness = self.users[self.current], self.harness
        kind, arg = step.kind, step.arg
        if kind == "send":
            await user.send(arg)
        elif kind == "tap":
            await user.tap(arg)
        elif kind == "contact":
            await user.share_contact(arg)
        elif kind == "contact_other":
            await user.share_contact(arg, own=False)
        elif kind == "code":
            await user.send_code(arg)
        elif kind == "wrong_code":
            await user.send(wrong_code(harness))
        elif kind == "pay":
            await user.pay()
        elif kind == "expect":
            user.expect(arg)
        elif kind == "expect_buttons":
            user.expect_buttons(*arg)
        elif kind == "expect_order":
            await harness.expect_order(user, arg)
        elif kind == "clock":
            harness.advance(seconds=arg.total_seconds())
        elif kind == "user":
            self.current = arg
        elif kind == "jobs":
            await harness.run_jobs()
        elif kind == "agent":
            self.current_agent = arg
        elif kind in AGENT_STEPS:
            await self.perform_agent(kind, arg, user)
        else:  # pragma: no cover - STEPS and this list go together
            raise AssertionError(kind)

    async def perform_agent(self, kind: str, arg: Any, user: ChatUser) -> None:
        """The current agent acts in the current user's topic of the staff group."""
        agent = self.agents[self.current_agent]  # type: ignore[index]  # set whenever agent steps exist
        if kind == "agent_send":
            await agent.send(arg, topic=user)
        elif kind == "agent_command":
            await agent.command(arg, topic=user)
        elif kind == "agent_tap":
            await agent.tap(arg, topic=user)
        elif kind == "agent_expect":
            agent.expect(arg, topic=user)
        else:  # pragma: no cover
            raise AssertionError(kind)

    def hint(self, step: Step) -> str:
        """For a button not found: where the labels come from (config/locales), so that a label
        renamed in a locale file, or misspelt in the scenario, is pointed at."""
        if step.kind not in ("tap", "expect_buttons"):
            return ""
        screen = self.users[self.current].screen
        labels: list[Label] = step.arg if step.kind == "expect_buttons" else [step.arg]
        on_screen = screen.buttons + screen.keyboard
        texts = self.harness.app.texts

        def where(text: str) -> str:
            found = [f"{key} in {texts.source(lang, key)}"
                     for lang, table in texts.tables.items() for key, value in table.items() if value == text]
            return " and ".join(found) or "no text of config/locales/*.toml"

        lines = []
        for label in labels:
            if isinstance(label, str) and label not in on_screen:
                lines.append(f"{label!r} is {where(label)}")
                lines += [f"the closest button on the screen, {near!r}, is {where(near)}"
                          for near in difflib.get_close_matches(label, on_screen, n=1, cutoff=0.5)]
        return "\nhint: " + "\n      ".join(lines) if lines else ""


async def seed_enterprise(harness: BotHarness, fixture: EnterpriseFixture) -> Enterprise:
    members = {phone: role.value for phone, role in fixture.members.items()}
    ent = await harness.enterprise(fixture.name, verified=fixture.verified, members=members)
    if fixture.edition is None and fixture.contracts_left is None and fixture.expires_in_days is None:
        return ent
    now = harness.clock.now()

    def mutate(e: Enterprise) -> None:
        if fixture.edition is not None:
            e.edition = fixture.edition
        if fixture.contracts_left is not None:
            e.contracts_left = fixture.contracts_left
        if e.edition == FREE_EDITION:
            e.expires_at = None  # 体验版 never expires
        elif fixture.expires_in_days is not None:
            e.expires_at = now + timedelta(days=fixture.expires_in_days)
        elif e.expires_at is None:
            e.expires_at = now + timedelta(days=365)  # a bought edition runs a year unless told

    return await harness.enterprises.update(ent.id, mutate)


def wrong_code(harness: BotHarness) -> str:
    """Six digits that are not the last code sent (to anyone)."""
    sent = [c for sms in harness.sms.gateway.outbox for c in re.findall(r"(?<!\d)\d{6}(?!\d)", sms.text)]
    return f"{(int(sent[-1]) + 1) % 1_000_000:06d}" if sent else "000000"


async def run_scenario(scenario: Scenario, redis: Redis) -> ScenarioResult:
    """Run on `redis` as it is: the caller gives an empty database (the flowtest command and the
    pytest `redis` fixture both empty theirs)."""
    started = time.perf_counter()
    result = ScenarioResult(scenario)
    harness = BotHarness(redis, clock=FixedClock())
    run = ScenarioRun(scenario, harness)
    try:
        try:
            await run.setup()
        except Exception as exc:  # a fixture the directory refuses, e.g. a malformed phone
            result.setup_error = f"{type(exc).__name__}: {exc}"
        stopped = result.setup_error is not None
        for step in scenario.steps:
            if stopped:
                result.steps.append(StepResult(step, "skipped"))
                continue
            try:
                await run.perform(step)
                result.steps.append(StepResult(step, "passed"))
            except StepFailed as exc:
                result.steps.append(StepResult(step, "failed", str(exc) + run.hint(step)))
                stopped = True
            except Exception as exc:
                result.steps.append(StepResult(step, "error", f"{type(exc).__name__}: {exc}"))
                stopped = True
    finally:
        await harness.close()
        result.seconds = time.perf_counter() - started
    return result


# --- reporting -------------------------------------------------------------------------------

MARKS = {"passed": "ok  ", "failed": "FAIL", "error": "ERR ", "skipped": "skip"}


def _indent(text: str, prefix: str) -> list[str]:
    return [(prefix + line).rstrip() for line in text.splitlines()]


def format_result(result: ScenarioResult, *, steps: bool = True) -> str:
    """The report of one scenario: a header, each step with ok/FAIL/skip, and for a failure the
    expectation against the screen found."""
    s = result.scenario
    lines = [f"{s.where}  {s.name}"]
    if result.setup_error:
        lines.append(f"  ERR   fixtures: {result.setup_error}")
    for r in result.steps:
        if steps or r.status in ("failed", "error"):
            lines.append(f"  {MARKS[r.status]}  line {r.step.line:<4} {r.step}")
        if r.message:
            lines += _indent(r.message, "              ")
    counts = {k: sum(1 for r in result.steps if r.status == k) for k in MARKS}
    verdict = "PASSED" if result.passed else result.status.upper()
    lines.append(
        f"  {verdict}: {counts['passed']} ok, {counts['failed']} failed, {counts['error']} errors, "
        f"{counts['skipped']} skipped in {result.seconds:.2f} s"
    )
    return "\n".join(lines)


def format_summary(results: list[ScenarioResult], broken_files: list[str]) -> str:
    passed = sum(1 for r in results if r.passed)
    failed = len(results) - passed
    parts = [f"{len(results)} scenario(s): {passed} passed, {failed} failed"]
    if broken_files:
        parts.append(f"{len(broken_files)} file(s) could not be read")
    verdict = "OK" if not failed and not broken_files else "FAILED"
    return f"{verdict} — " + "; ".join(parts)


def junit_xml(results: list[ScenarioResult], broken_files: Iterable[str] = ()) -> bytes:
    """JUnit XML for CI: one testcase per scenario, the step report as its failure text."""
    broken = list(broken_files)
    failures = sum(1 for r in results if r.status == "failed")
    errors = sum(1 for r in results if r.status == "error") + len(broken)
    total_time = sum(r.seconds for r in results)
    counts = {"tests": str(len(results) + len(broken)), "failures": str(failures),
              "errors": str(errors), "skipped": "0", "time": f"{total_time:.3f}"}
    root = ET.Element("testsuites", counts)
    suite = ET.SubElement(root, "testsuite", {"name": "flowtest", **counts})
    for r in results:
        s = r.scenario
        classname = re.sub(r"\W+", ".", str(s.path.with_suffix("")) if s.path else "scenario").strip(".")
        case = ET.SubElement(suite, "testcase", {
            "classname": classname, "name": s.name, "file": str(s.path or ""),
            "line": str(s.line), "time": f"{r.seconds:.3f}",
        })
        report = format_result(r)
        if r.status != "passed":
            problem = r.first_problem
            message = f"line {problem.step.line}: {problem.step}" if problem else f"fixtures: {r.setup_error}"
            tag = "failure" if r.status == "failed" else "error"
            ET.SubElement(case, tag, {"message": message, "type": tag}).text = report
        ET.SubElement(case, "system-out").text = report
    for message in broken:
        case = ET.SubElement(suite, "testcase", {"classname": "flowtest", "name": message.split(":")[0]})
        ET.SubElement(case, "error", {"message": message, "type": "ScenarioError"}).text = message
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


# --- recording (python -m bot playground --record FILE) -------------------------------------

# Parts of a screen that change from one run to the next: order ids, dates and times, codes, ids.
VOLATILE = re.compile(r"o[0-9a-f]{12}|\d{4}-\d{2}-\d{2}|\d{1,2}:\d{2}|(?<!\d)\d{6}(?!\d)|ent_[0-9a-f]{8}")
REGEX_SPECIALS = re.compile(r"([.^$*+?{}\[\]\\|()])")


def escape(text: str) -> str:
    """Like re.escape, but leaves spaces and CJK punctuation alone, so the file stays readable."""
    return REGEX_SPECIALS.sub(r"\\\1", text)


def stable_regex(text: str) -> str:
    """An anchored regex for a line of text: volatile parts become `.+`."""
    pieces = VOLATILE.split(text)
    return "^" + ".+".join(escape(p) for p in pieces) + "$"


def screen_regex(text: str) -> str | None:
    """The screen's first line that does not change between runs (else its first line, with the
    changing parts loosened), as an anchored regex."""
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        return None
    return stable_regex(next((line for line in lines if not VOLATILE.search(line)), lines[0]))


def label_for_file(label: str) -> str:
    if VOLATILE.search(label) or (label.startswith("/") and label.endswith("/")):
        return f"/{stable_regex(label)}/"
    return label


def _yaml_line(kind: str, value: Any = None) -> str:
    """One step, one line: `  - kind: value` (quoted only where YAML needs it)."""
    if value is None:
        return f"  - {kind}"
    dumped = yaml.safe_dump(value, allow_unicode=True, default_flow_style=True, width=1_000_000)
    return f"  - {kind}: " + dumped.strip().removesuffix("\n...").strip()


class Recorder:
    """Collects the steps of a playground session with an expectation after each, and writes
    them as a scenario that `python -m bot flowtest` replays."""

    def __init__(self, *, lang: str, phone: str, enterprises: list[Enterprise], name: str = "recorded session") -> None:
        self.name = name
        self.lang = lang
        self.phone = phone
        self.enterprises = enterprises
        self.lines: list[str] = []
        self.steps = 0

    def step(self, kind: str, value: Any = None) -> None:
        self.lines.append(_yaml_line(kind, value))
        self.steps += 1

    def tap(self, label: str) -> None:
        self.step("tap", label_for_file(label))

    def screen(self, screen: Screen) -> None:
        """What the screen shows now: its text (one stable line) and its buttons."""
        regex = screen_regex(screen.text)
        if regex:
            self.lines.append(_yaml_line("expect", regex))
        labels = [label_for_file(b) for b in screen.buttons + screen.keyboard]
        if labels:
            self.lines.append(_yaml_line("expect_buttons", labels))

    def text(self) -> str:
        fixtures = {
            "name": self.name,
            "enterprises": [
                {"name": e.name, "verified": e.verified,
                 "members": {phone: role.value for phone, role in e.members.items()}}
                for e in self.enterprises
            ],
            "users": {"buyer": {"lang": self.lang, "phone": self.phone}},
        }
        head = (
            "# Recorded with `python -m bot playground --record`. Replay it with\n"
            "#   python -m bot flowtest THIS_FILE\n"
            "# Expectations were taken from each screen; edit them freely (docs/testing.md).\n"
        )
        body = yaml.safe_dump(fixtures, allow_unicode=True, sort_keys=False, width=1_000_000)
        return head + body + "steps:\n" + "\n".join(self.lines) + "\n"

    def save(self, path: Path | str) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.text(), encoding="utf-8")
        return path
