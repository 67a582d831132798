"""Logging: one event per line, `event key=value ...`. Phone numbers are masked before they get here."""
import logging
import sys


def setup_logging(level: str = "INFO") -> None:
    logging.basicConfig(
        level=level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    logging.getLogger("aiogram.event").setLevel(logging.WARNING)  # one line per update is noise
