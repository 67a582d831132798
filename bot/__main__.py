"""python -m bot run | playground | admin ..."""
import sys

USAGE = """usage: python -m bot COMMAND

commands:
  run          run the bot against the Bot API at TELEGRAM_API_BASE (needs BOT_TOKEN, Redis)
  playground   chat with the bot in this terminal: no token, no network
  admin ...    manage the enterprise directory (python -m bot admin --help)
"""


def main(argv: list[str]) -> int:
    command, rest = (argv[0], argv[1:]) if argv else ("", [])
    if command == "run":
        from bot.runner import run
        return run()
    if command == "playground":
        from bot.playground import main as playground
        return playground(rest)
    if command == "admin":
        from bot.admin import main as admin
        return admin(rest)
    print(USAGE, file=sys.stderr if command not in ("-h", "--help") else sys.stdout)
    return 0 if command in ("-h", "--help") else 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
