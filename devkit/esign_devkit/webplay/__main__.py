"""python -m esign_devkit.webplay [--host H] [--port P] [--lang zh|en]: the browser playground, as
`python -m bot playground --web`, with a choice of the address it listens on (a phone on the
same network: --host 0.0.0.0)."""
from __future__ import annotations

import argparse
import sys

from esign_devkit.webplay.server import FIRST_BUYER_ID, main


def cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m esign_devkit.webplay",
                                     description="The browser playground (python -m bot playground --web), "
                                                 "with a choice of the address it listens on.")
    parser.add_argument("--host", default="127.0.0.1", help="the address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="the page's port (default 8000)")
    parser.add_argument("--lang", choices=["zh", "en"], default="zh", help="the first buyer's Telegram language")
    parser.add_argument("--user-id", type=int, default=FIRST_BUYER_ID, help="the first buyer's Telegram id")
    parser.add_argument("--gateway", choices=["sandbox", "wechat", "alipay"], default="sandbox",
                        help="the web checkout's payments: the sandbox, or a local WeChat Pay or Alipay")
    return main(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(cli(sys.argv[1:]))
