"""The garbage collector's settings for a bot process (docs/performance.md, "The garbage collector").

CPython starts a young-generation collection every 700 net allocations of container objects.
An update allocates a few hundred (the pydantic models of the update and of the Bot API replies,
coroutines, dicts), and with hundreds of updates in flight, objects that die a moment later are
caught alive, promoted and scanned again in the older generations; each full collection also
scans everything start-up made (modules, aiogram's and pydantic's schemas). docs/performance.md
has what that costs.

So, once the process is set up:
- `gc.freeze()`: what start-up made is never scanned again (it lives as long as the process);
- a young generation of 50,000 allocations (GC_THRESHOLDS): most of an update's objects are
  gone before a collection looks at them. The older generations still follow (a full
  collection after 20 × 10 young ones), so reference cycles are still freed; the young
  generation holds at most a few MB more than with CPython's default.
"""
from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

CPYTHON_DEFAULT = (700, 10, 10)
DEFAULT_THRESHOLDS = (50_000, 20, 10)


def freeze_start_up() -> None:
    """Collect what start-up left as garbage, then keep everything alive out of later scans."""
    gc.collect()
    gc.freeze()


def tune(thresholds: tuple[int, int, int] = DEFAULT_THRESHOLDS) -> None:
    """The bot process's settings, applied once its dispatcher is built."""
    freeze_start_up()
    gc.set_threshold(*thresholds)


@contextmanager
def thresholds(values: tuple[int, int, int]) -> Iterator[None]:
    """Run a block with these thresholds (the bench runs the bot's rounds under the bot's)."""
    before = gc.get_threshold()
    gc.set_threshold(*values)
    try:
        yield
    finally:
        gc.set_threshold(*before)
