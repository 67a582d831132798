"""`python -m bot settings --markdown`: the environment variables, read off config/settings.py.

The meaning of each variable is the comment written above its field, so the table cannot
drift from the code; docs/deploy.md holds it and a test checks it is current.
"""
from __future__ import annotations

import ast
import inspect
import json
from pathlib import Path

from pydantic import SecretStr

from config import settings as settings_module
from config.settings import Settings

ROOT = Path(settings_module.__file__).resolve().parent.parent


def _comments_above_fields() -> dict[str, str]:
    lines = inspect.getsource(settings_module).splitlines()
    tree = ast.parse("\n".join(lines))
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Settings")
    found: dict[str, str] = {}
    for node in cls.body:
        if not (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)):
            continue
        comment: list[str] = []
        row = node.lineno - 2
        while row >= 0 and lines[row].strip().startswith("#") and not lines[row].strip().startswith("# ---"):
            comment.insert(0, lines[row].strip().lstrip("#").strip())
            row -= 1
        found[node.target.id] = " ".join(comment)
    return found


def _default(name: str) -> str:
    field = Settings.model_fields[name]
    value = field.get_default(call_default_factory=True)
    if isinstance(value, SecretStr) or name.endswith(("_secret", "_token", "_key")):
        return "(secret)" if value not in (None, SecretStr("")) else "—"
    if value is None or value == "":
        return "—"
    if isinstance(value, Path):  # shown relative to the project, the same on every machine
        value = value.relative_to(ROOT)
    if isinstance(value, tuple | dict):  # as the environment gives it: JSON
        value = json.dumps(list(value) if isinstance(value, tuple) else value, separators=(",", ":"))
    return f"`{value}`".replace("|", "\\|")


def markdown_table() -> str:
    meanings = _comments_above_fields()
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for name in Settings.model_fields:
        rows.append(f"| `{name.upper()}` | {_default(name)} | {meanings.get(name, '')} |")
    return "\n".join(rows) + "\n"


def main(argv: list[str]) -> int:
    print(markdown_table(), end="")
    return 0
