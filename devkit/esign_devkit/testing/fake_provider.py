"""What the fake payment providers (fake_wechat_pay, fake_alipay) share: an aiohttp server on a
free localhost port, and notices posted until the merchant acknowledges them, on the provider's
retry schedule (a parameter, so that tests can compress hours into fractions of a second)."""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey

from services.payment_gateway import NoticeRejected, PaymentNotice
from services.payment_refunds import RefundNotice

log = logging.getLogger(__name__)


def private_pem(key: RSAPrivateKey) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def public_pem(key: RSAPublicKey) -> str:
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


class LocalServer:
    """An aiohttp application served on 127.0.0.1 on a port the system picks."""

    def __init__(self, app: web.Application) -> None:
        self._runner = web.AppRunner(app, access_log=None)
        self.base_url = ""

    async def start(self) -> str:
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.base_url = f"http://{host}:{port}"
        return self.base_url

    async def stop(self) -> None:
        await self._runner.cleanup()


@dataclass
class Delivery:
    """One attempt at posting a notice."""

    url: str
    attempt: int
    status: int  # 0: the endpoint could not be reached
    answer: str
    accepted: bool
    body: bytes


# Builds the notice afresh for each attempt: providers sign each delivery with a new timestamp.
NoticeBuilder = Callable[[], tuple[bytes, dict[str, str]]]
Acceptance = Callable[[int, str], bool]


class NoticeSender:
    """Posts notices in the background; each is sent again after each delay of `schedule` until
    `accepted(status, answer)` says the merchant took it, then it stops."""

    def __init__(self, schedule: Sequence[float], accepted: Acceptance) -> None:
        self.schedule = tuple(schedule)
        self._accepted = accepted
        self.deliveries: list[Delivery] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._session: aiohttp.ClientSession | None = None

    def send(self, url: str, build: NoticeBuilder) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(self._deliver(url, build))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def drain(self, timeout: float = 10.0) -> None:
        """Wait until every notice was accepted or its schedule ran out."""
        if self._tasks:
            await asyncio.wait_for(asyncio.gather(*list(self._tasks), return_exceptions=True), timeout)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        if self._session is not None:
            await self._session.close()

    async def _deliver(self, url: str, build: NoticeBuilder) -> None:
        for attempt, delay in enumerate((0.0, *self.schedule), start=1):
            if delay:
                await asyncio.sleep(delay)
            body, headers = build()
            status, answer = await self._post(url, body, headers)
            accepted = self._accepted(status, answer)
            self.deliveries.append(Delivery(url, attempt, status, answer, accepted, body))
            if accepted:
                return
        log.info("fake_provider.notice_gave_up url=%s", url)

    async def _post(self, url: str, body: bytes, headers: dict[str, str]) -> tuple[int, str]:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        try:
            async with self._session.post(url, data=body, headers=headers) as resp:
                return resp.status, await resp.text()
        except (aiohttp.ClientError, TimeoutError):
            return 0, ""


@dataclass
class MerchantEndpoint:
    """Our notify endpoint in miniature, for tests and the playground: it routes a notice by
    its kind, verifies it with the gateway, keeps what verified and answers with the gateway's
    ack; `fail_next` answers that many notices with a failure (as when storing fails), so that
    the provider sends them again."""

    gateway: Any  # a PaymentGateway that is also a RefundingGateway
    payments: list[PaymentNotice] = field(default_factory=list)
    refunds: list[RefundNotice] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    others: int = 0
    fail_next: int = 0
    url: str = ""
    _server: LocalServer | None = None

    async def start(self, path: str = "/payments/notify") -> str:
        app = web.Application()
        app.router.add_post(path, self.handle)
        self._server = LocalServer(app)
        self.url = await self._server.start() + path
        return self.url

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.stop()

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        if self.fail_next > 0:
            self.fail_next -= 1
            return self._answer(False, "store_failed")
        try:
            kind = self.gateway.notice_kind(body, request.headers)
            if kind == "payment":
                self.payments.append(self.gateway.verify_notice(body, request.headers))
            elif kind == "refund":
                self.refunds.append(self.gateway.verify_refund_notice(body, request.headers))
            else:
                self.others += 1
        except NoticeRejected as refusal:
            self.refused.append(refusal.reason)
            return self._answer(False, refusal.reason)
        return self._answer(True)

    def _answer(self, accepted: bool, reason: str = "") -> web.Response:
        ack = self.gateway.ack(accepted, reason)
        return web.Response(status=ack.status, text=ack.body, content_type=ack.content_type)
