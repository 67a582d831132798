"""python -m esign_devkit playground | flowtest | flows | settings | bench | loadtest | openloop"""
from __future__ import annotations

import sys
from collections.abc import Callable
from importlib import import_module

COMMANDS: dict[str, tuple[str, str]] = {
    "playground": ("esign_devkit.playground", "chat with the bot in this terminal (--web: in a browser)"),
    "flowtest": ("esign_devkit.flowtest", "run scenario files: flowtest scenarios/ (docs/testing.md)"),
    "flows": ("esign_devkit.diagram", "the conversation's states and transitions: flows --mermaid"),
    "settings": ("esign_devkit.settings_table", "the environment variables as a Markdown table (docs/deploy.md)"),
    "bench": ("esign_devkit.bench.run", "benchmark the purchase flow against bare aiogram (docs/performance.md)"),
    "loadtest": ("esign_devkit.loadtest", "signed webhook purchases against python -m bot run processes"),
    "openloop": ("esign_devkit.openloop", "latency at fixed update rates, and a burst of buyers (docs/performance.md)"),
}


def usage() -> str:
    lines = ["usage: python -m esign_devkit COMMAND", "", "commands:"]
    lines += [f"  {name:<11} {about}" for name, (_, about) in COMMANDS.items()]
    return "\n".join(lines)


def command(name: str) -> Callable[[list[str]], int] | None:
    found = COMMANDS.get(name)
    return import_module(found[0]).main if found else None


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    run = command(argv[0]) if argv else None
    if run is None:
        print(usage(), file=sys.stdout if argv[:1] in (["-h"], ["--help"]) else sys.stderr)
        return 0 if argv[:1] in (["-h"], ["--help"]) else 2
    return int(run(argv[1:]) or 0)


if __name__ == "__main__":
    sys.exit(main())
