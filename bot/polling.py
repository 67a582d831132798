"""Long polling that loses nothing and keeps each user's order (issue 6, guarantees 3 and 7).

aiogram's own polling confirms an update (the next getUpdates offset) as soon as it has read
it, so a process killed mid-update loses it. Here a batch is confirmed only after every update
in it was handled: a crash means Telegram delivers the batch again, and the updates already
handled are dropped by their dedup mark. Within a batch, one user's updates run one after the
other in update order; different users run at the same time.

Updates are fetched as plain JSON (`RawGetUpdates`) and parsed by `bot.updates.parse_update`,
which leaves out the tapped message's keyboard the bot never reads.
"""
from __future__ import annotations

import asyncio
import logging
import signal
from collections import defaultdict
from collections.abc import Iterable

from aiogram import Bot, Dispatcher
from aiogram.types import Update

from bot.updates import RawGetUpdates, parse_update

log = logging.getLogger(__name__)


def sender_of(update: Update) -> int | None:
    event = update.event
    user = getattr(event, "from_user", None)
    if user is not None:
        return user.id
    chat = getattr(event, "chat", None)
    return chat.id if chat is not None else None


def by_sender(updates: Iterable[Update]) -> list[list[Update]]:
    """The batch split per sender, each sender's updates in update order."""
    queues: dict[int | None, list[Update]] = defaultdict(list)
    for update in sorted(updates, key=lambda u: u.update_id):
        queues[sender_of(update)].append(update)
    return list(queues.values())


async def handle_batch(dp: Dispatcher, bot: Bot, updates: list[Update]) -> None:
    async def in_order(queue: list[Update]) -> None:
        for update in queue:
            try:
                await dp.feed_update(bot, update)
            except Exception:  # the error guard answered the user; the next update goes on
                log.exception("update.unhandled update_id=%s", update.update_id)

    await asyncio.gather(*(in_order(queue) for queue in by_sender(updates)))


async def poll(dp: Dispatcher, bot: Bot, stop: asyncio.Event, *, timeout: int = 25) -> None:
    """Fetch, handle, then confirm, until `stop` is set; a batch in flight is finished first."""
    offset: int | None = None
    allowed = dp.resolve_used_update_types()
    backoff = 1.0
    while not stop.is_set():
        fetch = asyncio.ensure_future(bot(RawGetUpdates(offset=offset, timeout=timeout, allowed_updates=allowed),
                                          request_timeout=timeout + 10))
        stopping = asyncio.ensure_future(stop.wait())
        await asyncio.wait({fetch, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if not fetch.done():  # stopped while waiting for updates: nothing was read
            fetch.cancel()
            break
        try:  # an update that does not parse fails the fetch, as aiogram's getUpdates would
            updates = [parse_update(raw, bot) for raw in fetch.result()]
        except Exception as exc:  # the Bot API is unreachable for a moment: try again, gently
            log.warning("polling.failed error=%s retry_in=%.0fs", type(exc).__name__, backoff)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 30)
            continue
        backoff = 1.0
        if updates:
            await handle_batch(dp, bot, updates)
            offset = updates[-1].update_id + 1  # confirmed by the next getUpdates


async def run_polling(dp: Dispatcher, bot: Bot) -> None:
    """Poll until SIGINT or SIGTERM, with the dispatcher's start-up and shutdown hooks."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    workflow = {"dispatcher": dp, "bots": [bot], **dp.workflow_data}
    await dp.emit_startup(bot=bot, **workflow)
    log.info("polling.start bot_id=%s", bot.id)
    try:
        await poll(dp, bot, stop)
    finally:
        log.info("polling.stop bot_id=%s", bot.id)
        await dp.emit_shutdown(bot=bot, **workflow)
        await bot.session.close()
