"""python -m bot run | admin ... | reconcile | refunds list|refund, and the developer tools by name."""
import sys
from importlib import import_module

USAGE = """usage: python -m bot COMMAND

commands:
  run          run the bot against the Bot API at TELEGRAM_API_BASE (needs BOT_TOKEN, Redis)
  admin ...    manage the enterprise directory (python -m bot admin --help)
  reconcile    compare the web orders and refunds with the payment providers (--hours N)
  refunds ...  list the payments kept for a refund, refund one (refunds list | refunds refund ID)

developer tools (the devkit package, installed by scripts/setup.sh):
  playground   chat with the bot in this terminal: no token, no network (--web: in a browser)
  flowtest     run scenario files: python -m bot flowtest scenarios/ (docs/testing.md)
  flows        print the conversation's states and transitions: python -m bot flows --mermaid
  settings     print the environment variables as a Markdown table (docs/deploy.md)
  bench        benchmark the purchase flow against bare aiogram (docs/performance.md)
  loadtest     signed webhook purchases against python -m bot run processes
  openloop     latency at fixed update rates, and a burst of buyers (docs/performance.md)
"""


# Developer tools live apart from what production runs (devkit/, the esign-bot-devkit package);
# they are looked up by name so that production never imports them.
DEVELOPER_TOOLS = ("playground", "flowtest", "flows", "settings", "bench", "loadtest", "openloop")


def developer_tool(command: str, rest: list[str]) -> int:
    try:
        tools = import_module("esign_devkit.__main__")
    except ModuleNotFoundError:
        print(f"error: `{command}` is a developer tool: install it with `pip install -e ./devkit` "
              "(scripts/setup.sh does)", file=sys.stderr)
        return 2
    return int(tools.main([command, *rest]))


def main(argv: list[str]) -> int:
    command, rest = (argv[0], argv[1:]) if argv else ("", [])
    if command == "run":
        if rest:  # `run --help` (or a typo) must not start the bot
            if rest[0] in ("-h", "--help"):
                print(USAGE)
                return 0
            print(f"error: run takes no arguments (settings come from the environment): {' '.join(rest)}",
                  file=sys.stderr)
            return 2
        from bot.runtime.runner import run
        return run()
    if command in DEVELOPER_TOOLS:
        return developer_tool(command, rest)
    if command == "reconcile":
        from bot.cli.reconcile import main as reconcile
        return reconcile(rest)
    if command == "refunds":
        from bot.cli.refunds import main as refunds
        return refunds(rest)
    if command == "admin":
        from bot.cli.admin import main as admin
        return admin(rest)
    print(USAGE, file=sys.stderr if command not in ("-h", "--help") else sys.stdout)
    return 0 if command in ("-h", "--help") else 2


def console() -> None:
    """The `esign-bot` console script."""
    sys.exit(main(sys.argv[1:]))


if __name__ == "__main__":
    console()
