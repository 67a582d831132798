"""Phone verification codes sent by SMS (docs/rules.md F3, R3, R11).

Codes are stored only as HMAC-SHA256(secret, phone:code). Time comes from the injected clock;
Redis TTLs only clean up. Send limits use fixed UTC windows (clock hour / clock day).
The two Lua scripts keep each check-and-update atomic in one round trip (they run on fakeredis+lupa too).
"""
from __future__ import annotations

import hashlib
import hmac
import logging
import math
import secrets
from collections.abc import Callable
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from redis.asyncio import Redis

from services import keys
from services.clock import Clock
from services.phones import mask_phone, normalize_phone
from services.sms import SmsGateway

log = logging.getLogger(__name__)

CODE_DIGITS = 6
DEFAULT_TEXTS = {
    "zh": "【腾讯电子签】您的验证码是 {code}，5分钟内有效。请勿泄露给他人。",
    "en": "[Tencent E-Sign] Your verification code is {code}. It is valid for 5 minutes. Do not share it.",
}
CLEANUP_MARGIN = 600  # seconds keys outlive their clock deadline, so "expired" can still be told apart


class _Masked:
    """A phone masked only if the log line is written (masking parses the number)."""

    def __init__(self, phone: str) -> None:
        self.phone = phone

    def __str__(self) -> str:
        return mask_phone(self.phone)


class CodePolicy(BaseModel):
    model_config = ConfigDict(frozen=True)

    ttl_seconds: int = Field(300, gt=0)
    max_attempts: int = Field(5, gt=0)  # wrong tries per code, then the code is dead
    cooldown_seconds: int = Field(60, ge=0)  # between two sends to one phone
    phone_per_hour: int = Field(5, gt=0)
    phone_per_day: int = Field(10, gt=0)
    user_per_day: int = Field(20, gt=0)


class SendResult(BaseModel):
    status: Literal["sent", "cooldown", "phone_limit", "user_limit"]
    retry_after: int = 0  # seconds; 0 when sent

    @property
    def sent(self) -> bool:
        return self.status == "sent"


class VerifyResult(BaseModel):
    status: Literal["ok", "wrong", "expired", "too_many", "no_code", "malformed"]
    attempts_left: int = 0  # wrong tries the live code still allows

    @property
    def ok(self) -> bool:
        return self.status == "ok"


# KEYS: code, cooldown, phone-hour, phone-day, user-day
# ARGV: now, ready_at, phone_hour_max, phone_day_max, user_day_max, hour_left, day_left,
#       digest, expires_at, uid, code_ttl, cooldown_ttl
# The longest wait among all blockers wins, so retry_after is never too early.
_SEND = """
local now = tonumber(ARGV[1])
local v = redis.call('MGET', KEYS[2], KEYS[3], KEYS[4], KEYS[5])
local status, wait = 'sent', 0
local function block(s, w) if w > wait then status, wait = s, w end end
local ready_at = tonumber(v[1] or '0')
if ready_at > now then block('cooldown', math.ceil(ready_at - now)) end
if tonumber(v[2] or '0') >= tonumber(ARGV[3]) then block('phone_limit', tonumber(ARGV[6])) end
if tonumber(v[3] or '0') >= tonumber(ARGV[4]) then block('phone_limit', tonumber(ARGV[7])) end
if tonumber(v[4] or '0') >= tonumber(ARGV[5]) then block('user_limit', tonumber(ARGV[7])) end
if status ~= 'sent' then return {status, wait} end
redis.call('SET', KEYS[2], ARGV[2], 'EX', ARGV[12])
for i, ttl in ipairs({ARGV[6], ARGV[7], ARGV[7]}) do
  redis.call('INCR', KEYS[i + 2])
  redis.call('EXPIRE', KEYS[i + 2], tonumber(ttl) + 60)
end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'digest', ARGV[8], 'expires_at', ARGV[9], 'tries', 0, 'uid', ARGV[10])
redis.call('EXPIRE', KEYS[1], ARGV[11])
return {'sent', 0}
"""

# KEYS: code, and the phone's chats (or the code again). ARGV: now, max_attempts, uid, count ('1'
# takes a try, '0' only peeks), digest of the code entered, then the chat and its language to
# note in the phone's chats on success ('' = none). One round trip: a right code is used up
# (deleted) at once; a wrong one takes a try. Atomic, so concurrent guesses can never exceed
# max_attempts and a code is used once.
_TRY = """
local v = redis.call('HMGET', KEYS[1], 'digest', 'expires_at', 'tries', 'uid')
if not v[1] or v[4] ~= ARGV[3] then return {'no_code', 0} end
if tonumber(v[2]) <= tonumber(ARGV[1]) then return {'expired', 0} end
local max = tonumber(ARGV[2])
if tonumber(v[3]) >= max then return {'too_many', 0} end
if ARGV[4] == '0' then return {'peek', max - tonumber(v[3])} end
if v[1] == ARGV[5] then
  redis.call('DEL', KEYS[1])
  if ARGV[6] and ARGV[6] ~= '' then redis.call('HSET', KEYS[2], ARGV[6], ARGV[7]) end
  return {'ok', 0}
end
local tries = redis.call('HINCRBY', KEYS[1], 'tries', 1)
return {'wrong', max - tries}
"""

# KEYS: code. ARGV: digest. Deletes the code only if it is still the one we checked (one use).
_CONSUME = """
if redis.call('HGET', KEYS[1], 'digest') == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class PhoneCodeService:
    """Sends and checks SMS codes. `phone` may be any form normalize_phone accepts (E.164 is best)."""

    def __init__(
        self,
        redis: Redis,
        clock: Clock,
        sms: SmsGateway,
        secret: bytes,
        texts: Callable[[str], str] | None = None,
        policy: CodePolicy | None = None,
    ) -> None:
        if not secret:
            raise ValueError("code secret must not be empty")
        self.redis = redis
        self.clock = clock
        self.sms = sms
        self.secret = secret
        self.texts = texts
        self.policy = policy or CodePolicy()
        self._send = redis.register_script(_SEND)
        self._try = redis.register_script(_TRY)
        self._consume = redis.register_script(_CONSUME)

    def _digest(self, phone: str, code: str) -> str:
        return hmac.new(self.secret, f"{phone}:{code}".encode(), hashlib.sha256).hexdigest()

    def _text(self, lang: str, code: str) -> str:
        template = self.texts(lang) if self.texts else DEFAULT_TEXTS.get(lang, DEFAULT_TEXTS["zh"])
        return template.replace("{code}", code)  # not str.format: templates may hold other braces

    async def send(self, user_id: int, phone: str, lang: str = "zh") -> SendResult:
        """Raises InvalidPhone for a bad number and SmsDeliveryError if the gateway fails
        (the send still counts towards the limits and the cool-down, so a failing provider isn't hammered)."""
        phone = normalize_phone(phone)
        p, now_dt = self.policy, self.clock.now()
        now = now_dt.timestamp()
        code = f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"
        digest = self._digest(phone, code)
        hour_left = math.ceil(3600 - now % 3600)
        day_left = math.ceil(86400 - now % 86400)
        status, wait = await self._send(
            keys=[
                keys.code(phone),
                keys.code_cooldown(phone),
                keys.codes_sent(phone, now_dt.strftime("hour-%Y%m%d%H")),
                keys.codes_sent(phone, now_dt.strftime("day-%Y%m%d")),
                keys.codes_by_user(user_id, now_dt.strftime("day-%Y%m%d")),
            ],
            args=[
                repr(now), repr(now + p.cooldown_seconds),
                p.phone_per_hour, p.phone_per_day, p.user_per_day, hour_left, day_left,
                digest, repr(now + p.ttl_seconds), str(user_id),
                p.ttl_seconds + CLEANUP_MARGIN, p.cooldown_seconds + 60,
            ],
        )
        if status != "sent":
            log.info("code to %s refused: %s, retry in %ss", _Masked(phone), status, wait)
            return SendResult(status=status, retry_after=int(wait))
        try:
            await self.sms.send(phone, self._text(lang, code))
        except Exception:
            await self._consume(keys=[keys.code(phone)], args=[digest])  # never delivered: not guessable
            log.warning("code to %s not delivered", _Masked(phone))
            raise
        log.info("code sent to %s", _Masked(phone))
        return SendResult(status="sent")

    async def verify(self, user_id: int, phone: str, code: str,
                     remember_chat: tuple[int, str] | None = None) -> VerifyResult:
        """Only the user who asked for the code can use it; anyone else gets "no_code".

        With `remember_chat` (chat id, language), a right code also notes the chat as one where
        the phone was verified (RedisEnterpriseDirectory.remember_chat: the reminders go there),
        in the same round trip."""
        phone = normalize_phone(phone)
        entered = "".join(code.split())
        malformed = not (len(entered) == CODE_DIGITS and entered.isdecimal())
        now = repr(self.clock.now().timestamp())
        args: list[str | int] = [now, self.policy.max_attempts, str(user_id)]
        if malformed:  # tell how many tries are left, but don't take one
            _, left = await self._try(keys=[keys.code(phone), keys.code(phone)], args=[*args, "0", "", "", ""])
            return VerifyResult(status="malformed", attempts_left=int(left))
        entered = f"{int(entered):0{CODE_DIGITS}d}"  # full-width digits (Chinese IMEs) to ASCII
        # The stored HMAC is compared in the script; without the secret, learning anything about
        # it says nothing about the code.
        chats_key, chat, lang = keys.code(phone), "", ""
        if remember_chat is not None:
            chats_key, chat, lang = keys.phone_chats(phone), str(remember_chat[0]), remember_chat[1]
        status, left = await self._try(keys=[keys.code(phone), chats_key],
                                       args=[*args, "1", self._digest(phone, entered), chat, lang])
        left = int(left)
        if status == "ok":
            log.info("code for %s verified", _Masked(phone))
            return VerifyResult(status="ok")
        if status != "wrong":
            return VerifyResult(status=status)
        log.info("wrong code for %s, %s tries left", _Masked(phone), left)
        return VerifyResult(status="wrong" if left > 0 else "too_many", attempts_left=left)

    async def cooldown_left(self, phone: str) -> int:
        """Seconds until a new code may be sent to `phone` (0 = now); limits are not included."""
        ready_at = await self.redis.get(keys.code_cooldown(normalize_phone(phone)))
        return max(0, math.ceil(float(ready_at) - self.clock.now().timestamp())) if ready_at else 0
