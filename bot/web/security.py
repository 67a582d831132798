"""The web app's safety: CSRF tokens, security headers, rate limits, and an access log that
never writes a checkout token (nor, since none is ever in a URL, a phone number or a code)."""
from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import re
import secrets
from urllib.parse import urlsplit

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from redis.asyncio import Redis

from services import keys
from services.clock import Clock

log = logging.getLogger("bot.web")

CSRF_COOKIE = "esign_csrf"
CSRF_NEW: web.RequestKey[str] = web.RequestKey("esign_csrf_new", str)  # a browser id the response sets
CSRF_FIELD = "csrf"
_BROWSER_ID = re.compile(r"^[0-9a-f]{32}$")


class Csrf:
    """Signed double-submit: a random browser id in a cookie, and in each form
    HMAC(key, browser id | scope), where the scope is the checkout token or the payment id.
    A form from another site carries no valid token; a token copied from one page does not
    work for another link."""

    def __init__(self, key: bytes, *, secure: bool) -> None:
        self._key = key
        self._secure = secure

    def browser_id(self, request: web.Request) -> str:
        """The browser's id: its cookie, or a new one the response will set."""
        current = request.cookies.get(CSRF_COOKIE, "")
        if _BROWSER_ID.match(current):
            return current
        fresh = request.get(CSRF_NEW)
        if fresh is None:
            fresh = request[CSRF_NEW] = secrets.token_hex(16)
        return fresh

    def token(self, request: web.Request, scope: str) -> str:
        return self._sign(self.browser_id(request), scope)

    def valid(self, request: web.Request, submitted: str, scope: str) -> bool:
        cookie = request.cookies.get(CSRF_COOKIE, "")
        expected = self._sign(cookie, scope).encode()
        return bool(_BROWSER_ID.match(cookie)) and hmac.compare_digest(expected, (submitted or "").encode())

    def _sign(self, browser_id: str, scope: str) -> str:
        return hmac.new(self._key, f"{browser_id}|{scope}".encode(), hashlib.sha256).hexdigest()

    def set_cookie(self, request: web.Request, response: web.StreamResponse) -> None:
        fresh = request.get(CSRF_NEW)
        if fresh is None:
            return
        # SameSite=None (https only) lets the cookie through in Telegram Web's Mini App iframe.
        response.set_cookie(CSRF_COOKIE, fresh, path="/", httponly=True, secure=self._secure,
                            samesite="None" if self._secure else "Lax", max_age=86400)


def same_origin(request: web.Request, public_origin: str) -> bool:
    """A form post must come from our own pages: Origin (when sent) is ours, and the browser
    does not call it cross-site."""
    if request.headers.get("Sec-Fetch-Site", "same-origin") == "cross-site":
        return False
    origin = request.headers.get("Origin")
    if origin is None or origin == "null":
        return True  # not told (old or privacy-minded browsers): the CSRF token decides
    own = f"{request.scheme}://{request.host}"
    return origin in (public_origin, own)


def security_headers(*, https: bool, form_action_origins: list[str]) -> dict[str, str]:
    form_action = " ".join(["'self'", *form_action_origins])
    headers = {
        # No inline script or style anywhere; Telegram's web client may frame the Mini App.
        "Content-Security-Policy": (
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            f"connect-src 'self'; form-action {form_action}; base-uri 'none'; "
            "frame-ancestors 'self' https://web.telegram.org https://*.telegram.org"
        ),
        "X-Content-Type-Options": "nosniff",
        # The checkout token is in the URL: no Referer leaves the site. (no-referrer would also
        # make browsers send "Origin: null" with our own forms.)
        "Referrer-Policy": "same-origin",
        "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
        "Cross-Origin-Opener-Policy": "same-origin",
        "Cross-Origin-Resource-Policy": "same-origin",
    }
    if https:
        headers["Strict-Transport-Security"] = "max-age=31536000"
    return headers


def client_ip(request: web.Request) -> str:
    """The peer's address; behind a reverse proxy on this host or a private network, the
    address the proxy appended last to X-Forwarded-For."""
    peer = request.remote or ""
    try:
        trusted = ipaddress.ip_address(peer).is_private or ipaddress.ip_address(peer).is_loopback
    except ValueError:
        trusted = False
    forwarded = request.headers.get("X-Forwarded-For", "")
    if trusted and forwarded:
        return forwarded.split(",")[-1].strip() or peer
    return peer


class RateLimiter:
    """Fixed windows on the injected clock, counted in Redis (shared by every replica)."""

    def __init__(self, redis: Redis, clock: Clock) -> None:
        self._redis = redis
        self._clock = clock

    async def hit(self, scope: str, who: str, *, limit: int, window_seconds: int) -> int:
        """Count one request; 0 when it is allowed, else the seconds until the window ends."""
        now = self._clock.now().timestamp()
        window = int(now // window_seconds)
        key = keys.web_rate(scope, hashlib.sha256(who.encode()).hexdigest()[:16], window)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.incr(key)
            pipe.expire(key, window_seconds + 60)
            count, _ = await pipe.execute()
        if int(count) <= limit:
            return 0
        return max(1, int((window + 1) * window_seconds - now))


_REDACT = [
    (re.compile(r"^/checkout/[^/]+"), "/checkout/<token>"),
    (re.compile(r"^/sandbox/pay/[^/]+"), "/sandbox/pay/<payment>"),
]


def redact_path(path: str) -> str:
    for pattern, replacement in _REDACT:
        path = pattern.sub(replacement, path)
    return path


class RedactingAccessLogger(AbstractAccessLogger):
    """One line per request without the query string and with tokens replaced."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        self.logger.info("web.request method=%s path=%s status=%s ms=%d", request.method,
                         redact_path(urlsplit(request.path).path), response.status, time * 1000)

    @property
    def enabled(self) -> bool:
        return self.logger.isEnabledFor(logging.INFO)
