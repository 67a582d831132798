"""WeChat's web authorisation (网页授权, scope snsapi_base): the buyer's openid under our appid,
which WeChat Pay's JSAPI needs, found without asking the buyer anything.

    1. the page sends WeChat's browser to
       https://open.weixin.qq.com/connect/oauth2/authorize?appid=..&redirect_uri=..&response_type=code
       &scope=snsapi_base&state=..#wechat_redirect
    2. WeChat sends it back to redirect_uri?code=..&state=..
    3. the server exchanges the code (once, within five minutes) at
       https://api.weixin.qq.com/sns/oauth2/access_token?appid&secret&code&grant_type=authorization_code
       for {"openid": ..., ...}; a refusal is {"errcode": ..., "errmsg": ...} with HTTP 200.

`state` is ours: it binds the return to one order and one browser, is signed with a key derived
from the AppSecret, lives STATE_SECONDS, and (the caller keeps its nonce) is used once. WeChat
takes only [A-Za-z0-9] in it, up to 128 characters.
"""
from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
from urllib.parse import urlencode, urlsplit

import aiohttp

from services.clock import Clock
from services.payment_gateway import LazySession

log = logging.getLogger(__name__)

OAUTH_BASE = "https://open.weixin.qq.com"
SNS_API_BASE = "https://api.weixin.qq.com"
STATE_SECONDS = 600  # the buyer has this long between leaving for WeChat's OAuth and coming back
STATE = re.compile(r"^([0-9a-f]{24})([0-9]{10})([0-9a-f]{64})$")


class OAuthFailed(Exception):
    """WeChat would not give the openid (its errcode, or what was wrong with its answer)."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


class WechatOAuth:
    def __init__(self, *, appid: str, secret: str, clock: Clock, oauth_base: str = OAUTH_BASE,
                 api_base: str = SNS_API_BASE, timeout_seconds: float = 10.0) -> None:
        if not secret:
            raise ValueError("the AppSecret is needed to exchange OAuth codes")
        self.appid = appid
        self._secret = secret
        self._state_key = hmac.new(secret.encode(), b"esign-wechat-oauth-state", hashlib.sha256).digest()
        self._clock = clock
        self._oauth_base = oauth_base.rstrip("/")
        self._api_base = api_base.rstrip("/")
        self._http = LazySession(timeout_seconds)

    @property
    def origin(self) -> str:
        """Where the buyer's browser goes (the page's CSP lets a redirect after a form go there)."""
        parts = urlsplit(self._oauth_base)
        return f"{parts.scheme}://{parts.netloc}"

    def authorize_url(self, redirect_uri: str, state: str) -> str:
        # WeChat's documented order of the parameters, and its fragment.
        query = urlencode({"appid": self.appid, "redirect_uri": redirect_uri, "response_type": "code",
                           "scope": "snsapi_base", "state": state})
        return f"{self._oauth_base}/connect/oauth2/authorize?{query}#wechat_redirect"

    # --- state -------------------------------------------------------------------------------------

    def state(self, order_id: str, browser: str) -> str:
        nonce, issued = secrets.token_hex(12), f"{int(self._clock.now().timestamp()):010d}"
        return nonce + issued + self._sign(nonce, issued, order_id, browser)

    def check_state(self, state: str, order_id: str, browser: str) -> str | None:
        """The state's nonce when we issued it, for this order and this browser, recently; else
        None. The caller refuses a nonce seen before (one use)."""
        match = STATE.match(state or "")
        if match is None:
            return None
        nonce, issued, signature = match.groups()
        if not hmac.compare_digest(self._sign(nonce, issued, order_id, browser), signature):
            return None
        age = self._clock.now().timestamp() - int(issued)
        return nonce if -60 <= age <= STATE_SECONDS else None

    def _sign(self, nonce: str, issued: str, order_id: str, browser: str) -> str:
        return hmac.new(self._state_key, f"{nonce}|{issued}|{order_id}|{browser}".encode(), hashlib.sha256).hexdigest()

    # --- the code --------------------------------------------------------------------------------

    async def openid(self, code: str) -> str:
        """The openid the code stands for (WeChat takes each code once, for five minutes)."""
        if not code or len(code) > 512:
            raise OAuthFailed("no_code")
        query = urlencode({"appid": self.appid, "secret": self._secret, "code": code,
                           "grant_type": "authorization_code"})
        try:
            async with self._http.get().get(f"{self._api_base}/sns/oauth2/access_token?{query}") as resp:
                status = resp.status
                answer = await resp.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise OAuthFailed(f"unreachable:{type(exc).__name__}") from None
        if not isinstance(answer, dict) or status != 200:
            raise OAuthFailed(f"http_{status}")
        if answer.get("errcode"):
            raise OAuthFailed(str(answer["errcode"]))
        if answer.get("is_snapshotuser") == 1:
            raise OAuthFailed("snapshot_user")  # 朋友圈快照页: a stand-in openid, which cannot pay
        openid = answer.get("openid")
        if not isinstance(openid, str) or not openid:
            raise OAuthFailed("no_openid")
        return openid

    async def close(self) -> None:
        await self._http.close()
