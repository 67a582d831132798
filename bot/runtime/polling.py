"""Long polling that confirms only what was handled, and in which no user holds up another.

getUpdates confirms every update below the offset it is given. aiogram's own polling passes
the next offset as soon as it has read a batch, so a process killed mid-update loses it. Here
the offset given is the oldest update not finished yet: after a crash Telegram delivers again
every update from there, and those already handled are dropped by their dedup mark.

Fetching goes on while updates are handled. Each user's updates are handled one after the
other in update order (one worker per user with work), different users side by side, so a
user whose update waits on a slow call holds up no one else; a pre-checkout query waits
behind nothing (`queue_of`). An unfinished update is not
confirmed, so getUpdates returns it again at once: updates already taken are skipped, and
while any is unfinished the next fetch waits until one finishes or POLL_INTERVAL passes.
At most `max_in_flight` updates are taken at a time, and getUpdates returns at most 100 from
the offset: updates beyond that window wait until the oldest unfinished one finishes.

A payment that could not be stored (`PaymentNotStored`: Redis did not answer) stays
unfinished: its worker tries it again, waiting longer each time, until it is stored or the
process stops; it is never confirmed before (and the user's later updates wait behind it).

`stop` set (SIGTERM): fetching stops, the updates in flight finish (what still runs after
`grace` seconds is cancelled, and not confirmed), what was handled is confirmed, and `poll`
returns.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Hashable

from aiogram import Bot, Dispatcher
from aiogram.types import Chat, Update, User

from bot.errors import PaymentNotStored

log = logging.getLogger(__name__)

POLL_INTERVAL = 0.25  # seconds between fetches while an update is unfinished (no long poll then)
MAX_IN_FLIGHT = 64  # below getUpdates' 100, so a fetch can still bring new updates
PAYMENT_RETRY_FIRST, PAYMENT_RETRY_MAX = 0.5, 5.0  # seconds between tries of a payment not stored
CONFIRM_TIMEOUT = 10  # the last getUpdates, which confirms what was handled before exiting


def queue_of(update: Update) -> Hashable:
    """The queue an update waits in: its sender's, so that one user's updates keep their order.
    A pre-checkout waits behind nothing: Telegram needs its answer within 10 s, and it reads the
    order, not the conversation (bot.middlewares.SessionLock does not lock it either)."""
    if update.pre_checkout_query is not None:
        return ("pre_checkout_query", update.update_id)
    event = update.event
    user: User | None = getattr(event, "from_user", None)
    if user is not None:
        return user.id
    chat: Chat | None = getattr(event, "chat", None)
    return chat.id if chat is not None else None


class Poller:
    """One polling loop's bookkeeping: what was taken, what is unfinished, one queue per user."""

    def __init__(self, dp: Dispatcher, bot: Bot, stop: asyncio.Event, *, timeout: int,
                 max_in_flight: int) -> None:
        self.dp = dp
        self.bot = bot
        self.stop = stop
        self.timeout = timeout
        self.max_in_flight = max_in_flight
        self.taken: set[int] = set()  # ids taken and not yet confirmed (getUpdates may return them again)
        self.unfinished: set[int] = set()
        self.next_new: int | None = None  # one past the newest update taken
        self.queues: dict[Hashable, deque[Update]] = {}
        self.workers: set[asyncio.Task[None]] = set()
        self.progress = asyncio.Event()  # an update finished: the offset may move

    def offset(self) -> int | None:
        """Confirms everything below the oldest unfinished update (or all that was taken)."""
        return min(self.unfinished) if self.unfinished else self.next_new

    # --- fetching ------------------------------------------------------------------------------

    async def fetch_until_stopped(self) -> None:
        allowed = self.dp.resolve_used_update_types()
        backoff = 1.0
        while not self.stop.is_set():
            if self.unfinished:
                await self._first_of(self.progress.wait(), timeout=POLL_INTERVAL)
                if self.stop.is_set():
                    break
                if len(self.unfinished) >= self.max_in_flight:
                    continue
            self.progress.clear()
            offset = self.offset()
            timeout = 0 if self.unfinished else self.timeout  # an unfinished update comes back at once anyway
            fetch = asyncio.ensure_future(self.bot.get_updates(
                offset=offset, timeout=timeout, allowed_updates=allowed, request_timeout=timeout + 10))
            await self._first_of(fetch)
            if not fetch.done():  # stopped while waiting for updates: nothing was read
                fetch.cancel()
                with contextlib.suppress(BaseException):
                    await fetch
                break
            try:  # an update that does not parse fails the fetch, as aiogram's getUpdates would
                if offset is not None:  # Telegram returns nothing below it again
                    self.taken = {update_id for update_id in self.taken if update_id >= offset}
                new = [update for update in fetch.result() if update.update_id not in self.taken]
            except Exception as exc:  # the Bot API is unreachable for a moment: try again, gently
                log.warning("polling.failed error=%s retry_in=%.0fs", type(exc).__name__, backoff)
                await self._first_of(asyncio.sleep(backoff))
                backoff = min(backoff * 2, 30)
                continue
            backoff = 1.0
            for update in sorted(new, key=lambda u: u.update_id):
                if len(self.unfinished) >= self.max_in_flight:
                    break  # this one and the later ones come again in the next fetch
                self.take(update)

    async def _first_of(self, awaitable: Awaitable[object], *, timeout: float | None = None) -> None:
        """Wait for `awaitable`, for `stop` or for `timeout`, whichever comes first."""
        task = asyncio.ensure_future(awaitable)
        stopping = asyncio.ensure_future(self.stop.wait())
        try:
            await asyncio.wait({task, stopping}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
            if not isinstance(awaitable, asyncio.Future):  # a wait of ours, not the caller's fetch
                task.cancel()

    # --- handling ------------------------------------------------------------------------------

    def take(self, update: Update) -> None:
        update_id = update.update_id
        self.taken.add(update_id)
        self.unfinished.add(update_id)
        self.next_new = max(self.next_new or 0, update_id + 1)
        key = queue_of(update)
        queue = self.queues.get(key)
        if queue is not None:  # that user's worker takes it after their earlier ones
            queue.append(update)
            return
        self.queues[key] = deque([update])
        worker = asyncio.create_task(self.work(key))
        self.workers.add(worker)
        worker.add_done_callback(self.workers.discard)

    async def work(self, key: Hashable) -> None:
        """Handle one queue's updates in order until it is empty."""
        queue = self.queues[key]
        try:
            while queue:
                update = queue[0]
                if not await self.handle(update):
                    return  # stopping with a payment not stored: it and what follows stay unconfirmed
                queue.popleft()
                self.unfinished.discard(update.update_id)
                self.progress.set()
        finally:
            del self.queues[key]

    async def handle(self, update: Update) -> bool:
        """True once the update is handled (its errors answered by the guard); False when the
        process stops before a payment that was not stored could be."""
        delay = PAYMENT_RETRY_FIRST
        while True:
            try:
                await self.dp.feed_update(self.bot, update)
                return True
            except PaymentNotStored:
                log.info("polling.payment_retry update_id=%s retry_in=%.1fs", update.update_id, delay)
                await self._first_of(asyncio.sleep(delay))
                if self.stop.is_set():
                    return False
                delay = min(delay * 2, PAYMENT_RETRY_MAX)
            except Exception:  # the error guard answered the user; the next update goes on
                log.exception("update.unhandled update_id=%s", update.update_id)
                return True

    # --- stopping ------------------------------------------------------------------------------

    async def drain(self, grace: float) -> None:
        """Let the updates in flight finish (at most `grace` seconds), then confirm the handled ones."""
        if self.workers:
            log.info("polling.draining updates=%d grace=%.0fs", len(self.unfinished), grace)
            _, late = await asyncio.wait(set(self.workers), timeout=grace)
            if late:
                log.warning("polling.drain_timeout cancelled=%d: not confirmed, Telegram delivers them again",
                            len(late))
                await self.abandon()
        offset = self.offset()
        if offset is None:
            return
        try:  # the offset confirms what lies below it; what this returns stays with Telegram
            await self.bot.get_updates(offset=offset, timeout=0, limit=1, request_timeout=CONFIRM_TIMEOUT)
        except Exception as exc:  # not confirmed: Telegram delivers those again, the dedup marks drop them
            log.warning("polling.confirm_failed error=%s", type(exc).__name__)

    async def abandon(self) -> None:
        """Cancel the workers still running; their updates stay unconfirmed."""
        workers = set(self.workers)
        for worker in workers:
            worker.cancel()
        await asyncio.gather(*workers, return_exceptions=True)


async def poll(dp: Dispatcher, bot: Bot, stop: asyncio.Event, *, timeout: int = 25, grace: float = 25.0,
               max_in_flight: int = MAX_IN_FLIGHT) -> None:
    """Fetch and handle until `stop` is set; then finish the updates in flight (at most `grace`
    seconds) and confirm what was handled."""
    poller = Poller(dp, bot, stop, timeout=timeout, max_in_flight=max_in_flight)
    log.info("polling.start bot_id=%s", bot.id)
    try:
        await poller.fetch_until_stopped()
        await poller.drain(grace)
    finally:
        await poller.abandon()  # cancelled itself (the process dying): leave nothing running
        log.info("polling.stop bot_id=%s", bot.id)
