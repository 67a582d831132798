"""python -m bot run | playground | admin ... | flowtest PATH... | flows --mermaid"""
import sys

USAGE = """usage: python -m bot COMMAND

commands:
  run          run the bot against the Bot API at TELEGRAM_API_BASE (needs BOT_TOKEN, Redis)
  playground   chat with the bot in this terminal: no token, no network
  admin ...    manage the enterprise directory (python -m bot admin --help)
  flowtest     run scenario files: python -m bot flowtest scenarios/ (docs/testing.md)
  bench        benchmark the purchase flow against bare aiogram (docs/performance.md)
  flows        print the conversation's states and transitions: python -m bot flows --mermaid
  reconcile    list web orders whose state differs between the payment gateway and Redis
  refunds list the payments kept for a refund
  settings     print the environment variables as a Markdown table (docs/deploy.md)
"""


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
        from bot.runner import run
        return run()
    if command == "playground":
        from bot.playground import main as playground
        return playground(rest)
    if command == "flowtest":
        from bot.flowtest import main as flowtest
        return flowtest(rest)
    if command == "settings":
        from bot.settingsdoc import main as settings_table
        return settings_table(rest)
    if command == "flows":
        from bot.flowgraph import main as flows
        return flows(rest)
    if command == "bench":
        from bot.bench import main as bench
        return bench(rest)
    if command == "reconcile":
        from bot.reconcile import main as reconcile
        return reconcile(rest)
    if command == "refunds":
        from bot.refunds import main as refunds
        return refunds(rest)
    if command == "admin":
        from bot.admin import main as admin
        return admin(rest)
    print(USAGE, file=sys.stderr if command not in ("-h", "--help") else sys.stdout)
    return 0 if command in ("-h", "--help") else 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
