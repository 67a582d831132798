"""`python -m bot flows --mermaid`: the diagram is read off the code, and docs/flows.md is current."""
import subprocess
import sys
from pathlib import Path

import fakeredis
from aiogram import Bot
from esign_devkit.diagram import Transition, render_markdown, transitions

from bot.app import build_context, build_dispatcher
from config.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


def dispatcher():
    return build_dispatcher(build_context(Settings(_env_file=None), fakeredis.aioredis.FakeRedis()), Bot("42:DIAGRAM"))


def test_F2_purchase_steps_are_derived_from_the_handlers():
    found = set(transitions(dispatcher()))
    assert Transition("Buy_edition", "Buy_years", "pick_edition") in found
    assert Transition("Buy_edition", "Buy_web_only", "pick_edition") in found  # R2
    assert Transition("Buy_years", "Buy_pack", "pick_years") in found
    assert Transition("Phone_code", "Buy_confirm", "typed_code") in found
    assert Transition("*", "home", "start") in found  # /start works from every step


def test_docs_flows_md_is_current():
    expected = render_markdown(dispatcher())
    actual = (ROOT / "docs" / "flows.md").read_text(encoding="utf-8")
    assert actual == expected, "docs/flows.md is stale: run `python -m bot flows --mermaid --markdown > docs/flows.md`"


def test_the_command_prints_mermaid():
    result = subprocess.run([sys.executable, "-m", "bot", "flows", "--mermaid"], cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("stateDiagram-v2\n")
    assert "Buy_years --> Buy_pack: pick_years" in result.stdout
