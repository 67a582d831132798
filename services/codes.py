"""Phone verification codes sent by SMS (docs/rules.md F3, R3, R11; docs/security.md, "SMS codes").

Codes are stored only as HMAC-SHA256(secret, phone:code). Time comes from the injected clock;
Redis TTLs only clean up. The two Lua scripts keep each check-and-update atomic in one round
trip (they run on fakeredis+lupa too).

Who may have a code, and when (sliding windows, kept as sorted sets of send times trimmed
to the last day by the send script itself):
- a phone gets at most what the SMS vendor allows: one code per 30 s, 5 an hour, 10 a day,
  whoever asked;
- a user who has not proven the phone is theirs (typed it, rather than sharing their own
  Telegram contact, and never verified a code for it) may use only part of that budget,
  together with every other such user: the rest is kept for the owner, so strangers asking
  for a victim's number can never lock its owner out;
- a live code belongs to the user who asked for it: one per (phone, user), so nobody else's
  request replaces or spends it;
- each user has a budget of their own over all phones (SMS cost), and the resend button's
  cool-down per (phone, user).
A verified code, or a shared contact whose user_id is the sender (Telegram vouches for it),
proves ownership; the proof is remembered `proof_days`.
"""
from __future__ import annotations

import hashlib
import hmac
import logging
import math
import secrets
from collections.abc import Callable
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
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
DAY = 86400


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
    cooldown_seconds: int = Field(60, ge=0)  # between two codes for one (phone, user): the resend button
    # The SMS vendor's limits per phone, over everyone who asks (sliding windows).
    phone_spacing_seconds: int = Field(30, ge=0)
    phone_per_hour: int = Field(5, gt=0)
    phone_per_day: int = Field(10, gt=0)
    # What users not proven to own the phone may use of it, all of them together; the rest
    # is the owner's. Must stay below the phone's own limits.
    unproven_per_hour: int = Field(3, gt=0)
    unproven_per_day: int = Field(5, gt=0)
    # Each user over all phones.
    user_per_hour: int = Field(10, gt=0)
    user_per_day: int = Field(20, gt=0)
    proof_days: int = Field(90, gt=0)  # a proof of ownership is remembered this long
    # Country calling codes codes are sent to (SMS pumping to premium destinations costs money);
    # None: any.
    country_codes: frozenset[int] | None = None

    @model_validator(mode="after")
    def _owner_keeps_a_share(self) -> CodePolicy:
        if self.unproven_per_hour >= self.phone_per_hour or self.unproven_per_day >= self.phone_per_day:
            raise ValueError("unproven requests must leave part of a phone's hourly and daily budget to its owner")
        return self


SendStatus = Literal["sent", "cooldown", "phone_limit", "prove_ownership", "user_limit", "not_served"]


class SendResult(BaseModel):
    """`prove_ownership`: the share of the phone's budget open to anyone is used up; its owner
    still gets a code by sharing their own contact (or having verified this phone before).
    `not_served`: no codes to that country."""

    status: SendStatus
    retry_after: int = 0  # seconds; 0 when sent
    proven: bool = False  # the request counted as the owner's

    @property
    def sent(self) -> bool:
        return self.status == "sent"


class VerifyResult(BaseModel):
    status: Literal["ok", "wrong", "expired", "too_many", "no_code", "malformed"]
    attempts_left: int = 0  # wrong tries the live code still allows

    @property
    def ok(self) -> bool:
        return self.status == "ok"


# KEYS: 1 code, 2 resend cool-down, 3 phone's sends, 4 phone's unproven sends, 5 user's sends,
#       6 phone's owners
# ARGV: 1 now, 2 uid, 3 proven by the caller ('1'/'0'), 4 proof valid since, 5 digest,
#       6 expires_at, 7 code key ttl, 8 resend cool-down, 9 phone spacing, 10 phone/hour,
#       11 phone/day, 12 unproven/hour, 13 unproven/day, 14 user/hour, 15 user/day, 16 nonce,
#       17 an hour ago, 18 a day ago, 19 ready_at (now + resend cool-down)
# (times as Python wrote them: Lua's tostring would round them)
# Sliding windows: a send at t counts while t > now - span. The longest wait among all
# blockers wins, so retry_after is never too early. Refusals write nothing.
_SEND = """
local now, uid = tonumber(ARGV[1]), ARGV[2]
for i = 3, 5 do redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', ARGV[18]) end
local proven = ARGV[3] == '1'
if not proven then
  local at = redis.call('ZSCORE', KEYS[6], uid)
  proven = at ~= false and at ~= nil and tonumber(at) > tonumber(ARGV[4])
end
local status, wait = 'sent', 0
local function block(s, w)
  w = math.ceil(w)
  if w > wait then status, wait = s, w end
end
local ready = tonumber(redis.call('GET', KEYS[2]) or '0')
if ready > now then block('cooldown', ready - now) end
local last = redis.call('ZRANGE', KEYS[3], -1, -1, 'WITHSCORES')
if last[2] and tonumber(last[2]) + tonumber(ARGV[9]) > now then
  block('cooldown', tonumber(last[2]) + tonumber(ARGV[9]) - now)
end
local function window(key, since, span, max, s)
  max = tonumber(max)
  since = '(' .. since
  local n = redis.call('ZCOUNT', key, since, '+inf')
  if n >= max then
    local oldest = redis.call('ZRANGEBYSCORE', key, since, '+inf', 'WITHSCORES', 'LIMIT', n - max, 1)
    block(s, tonumber(oldest[2]) + span - now)
  end
end
window(KEYS[3], ARGV[17], 3600, ARGV[10], 'phone_limit')
window(KEYS[3], ARGV[18], 86400, ARGV[11], 'phone_limit')
if not proven then
  window(KEYS[4], ARGV[17], 3600, ARGV[12], 'prove_ownership')
  window(KEYS[4], ARGV[18], 86400, ARGV[13], 'prove_ownership')
end
window(KEYS[5], ARGV[17], 3600, ARGV[14], 'user_limit')
window(KEYS[5], ARGV[18], 86400, ARGV[15], 'user_limit')
if status ~= 'sent' then return {status, wait, proven and 1 or 0} end
local member = ARGV[1] .. ':' .. uid .. ':' .. ARGV[16]
local logs = {3, 5}
if not proven then logs = {3, 4, 5} end
for _, i in ipairs(logs) do
  redis.call('ZADD', KEYS[i], now, member)
  redis.call('EXPIRE', KEYS[i], 86400 + 60)
end
redis.call('SET', KEYS[2], ARGV[19], 'EX', tonumber(ARGV[8]) + 60)
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'digest', ARGV[5], 'expires_at', ARGV[6], 'tries', 0)
redis.call('EXPIRE', KEYS[1], ARGV[7])
return {'sent', 0, proven and 1 or 0}
"""

# KEYS: code, the phone's chats (or the code again), the phone's owners. ARGV: now, max_attempts,
# count ('1' takes a try, '0' only peeks), digest of the code entered, the chat and its language
# to note in the phone's chats on success ('' = none), uid, proof ttl (seconds). One round
# trip: a right code is used up (deleted) at once and proves the user owns the phone; a wrong
# one takes a try. Atomic, so concurrent guesses can never exceed max_attempts and a code is
# used once.
_TRY = """
local v = redis.call('HMGET', KEYS[1], 'digest', 'expires_at', 'tries')
if not v[1] then return {'no_code', 0} end
if tonumber(v[2]) <= tonumber(ARGV[1]) then return {'expired', 0} end
local max = tonumber(ARGV[2])
if tonumber(v[3]) >= max then return {'too_many', 0} end
if ARGV[3] == '0' then return {'peek', max - tonumber(v[3])} end
if v[1] == ARGV[4] then
  redis.call('DEL', KEYS[1])
  if ARGV[5] ~= '' then redis.call('HSET', KEYS[2], ARGV[5], ARGV[6]) end
  redis.call('ZADD', KEYS[3], ARGV[1], ARGV[7])
  redis.call('EXPIRE', KEYS[3], ARGV[8])
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

    async def send(self, user_id: int, phone: str, lang: str = "zh", *, proven: bool = False) -> SendResult:
        """A code for `user_id` to `phone`. `proven`: the caller has Telegram's word that the
        phone is the user's (their own shared contact); a user who verified a code for it
        before counts as proven too. Raises InvalidPhone for a bad number and SmsDeliveryError
        if the gateway fails (the send still counts towards the limits and the cool-down, so a
        failing provider isn't hammered)."""
        phone = normalize_phone(phone)
        p = self.policy
        # Country calling codes are prefix-free (ITU E.164): a prefix test is exact.
        if p.country_codes is not None and not any(phone.startswith(f"+{cc}") for cc in p.country_codes):
            log.info("code.refused phone=%s status=not_served", _Masked(phone))
            return SendResult(status="not_served")
        now = self.clock.now().timestamp()
        code = f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"
        digest = self._digest(phone, code)
        status, wait, owner = await self._send(
            keys=[
                keys.code(phone, user_id),
                keys.code_cooldown(phone, user_id),
                keys.codes_sent(phone),
                keys.codes_sent_unproven(phone),
                keys.codes_by_user(user_id),
                keys.phone_owners(phone),
            ],
            args=[
                repr(now), str(user_id), "1" if proven else "0", repr(now - p.proof_days * DAY),
                digest, repr(now + p.ttl_seconds), p.ttl_seconds + CLEANUP_MARGIN, p.cooldown_seconds,
                p.phone_spacing_seconds, p.phone_per_hour, p.phone_per_day, p.unproven_per_hour,
                p.unproven_per_day, p.user_per_hour, p.user_per_day, secrets.token_hex(4),
                repr(now - 3600), repr(now - DAY), repr(now + p.cooldown_seconds),
            ],
        )
        if status != "sent":
            log.info("code.refused phone=%s status=%s retry_after=%s", _Masked(phone), status, wait)
            return SendResult(status=status, retry_after=int(wait), proven=bool(owner))
        try:
            await self.sms.send(phone, self._text(lang, code))
        except Exception:
            await self._consume(keys=[keys.code(phone, user_id)], args=[digest])  # never delivered: not guessable
            log.warning("code.not_delivered phone=%s", _Masked(phone))
            raise
        log.info("code.sent phone=%s proven=%s", _Masked(phone), bool(owner))
        return SendResult(status="sent", proven=bool(owner))

    async def verify(self, user_id: int, phone: str, code: str,
                     remember_chat: tuple[int, str] | None = None) -> VerifyResult:
        """Checks the code `user_id` asked for; anyone else's code is not theirs to use ("no_code").

        With `remember_chat` (chat id, language), a right code also notes the chat as one where
        the phone was verified (RedisEnterpriseDirectory.remember_chat: the reminders go there),
        in the same round trip."""
        phone = normalize_phone(phone)
        entered = "".join(code.split())
        malformed = not (len(entered) == CODE_DIGITS and entered.isdecimal())
        now = repr(self.clock.now().timestamp())
        code_key, owners = keys.code(phone, user_id), keys.phone_owners(phone)
        args: list[str | int] = [now, self.policy.max_attempts]
        tail: list[str | int] = [str(user_id), self.policy.proof_days * DAY]
        if malformed:  # tell how many tries are left, but don't take one
            _, left = await self._try(keys=[code_key, code_key, owners], args=[*args, "0", "", "", "", *tail])
            return VerifyResult(status="malformed", attempts_left=int(left))
        entered = f"{int(entered):0{CODE_DIGITS}d}"  # full-width digits (Chinese IMEs) to ASCII
        # The stored HMAC is compared in the script; without the secret, learning anything about
        # it says nothing about the code.
        chats_key, chat, lang = code_key, "", ""
        if remember_chat is not None:
            chats_key, chat, lang = keys.phone_chats(phone), str(remember_chat[0]), remember_chat[1]
        status, left = await self._try(keys=[code_key, chats_key, owners],
                                       args=[*args, "1", self._digest(phone, entered), chat, lang, *tail])
        left = int(left)
        if status == "ok":
            log.info("code.verified phone=%s", _Masked(phone))
            return VerifyResult(status="ok")
        if status != "wrong":
            return VerifyResult(status=status)
        log.info("code.wrong phone=%s left=%s", _Masked(phone), left)
        return VerifyResult(status="wrong" if left > 0 else "too_many", attempts_left=left)

    async def live(self, user_id: int, phone: str) -> bool:
        """Whether `user_id` holds a code for `phone` that can still be typed (sent, not used,
        not expired, tries left): a cool-down then means "type the code you have"."""
        phone = normalize_phone(phone)
        code_key = keys.code(phone, user_id)
        status, _ = await self._try(keys=[code_key, code_key, keys.phone_owners(phone)],
                                    args=[repr(self.clock.now().timestamp()), self.policy.max_attempts, "0", "", "", "",
                                          str(user_id), self.policy.proof_days * DAY])
        return status in ("peek", b"peek")

    async def cooldown_left(self, user_id: int, phone: str) -> int:
        """Seconds until `user_id` may ask for a new code to `phone` (0 = now), by the resend
        cool-down alone; the phone's and the user's limits are not included."""
        ready_at = await self.redis.get(keys.code_cooldown(normalize_phone(phone), user_id))
        return max(0, math.ceil(float(ready_at) - self.clock.now().timestamp())) if ready_at else 0
