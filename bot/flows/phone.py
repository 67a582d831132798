"""验证手机号 (F3): a typed or shared number, a 6-digit SMS code, resend after a cool-down,
limited tries, change of number. On success the purchase goes on to its confirmation."""
from collections.abc import Awaitable, Callable

from aiogram import F, Router
from aiogram.filters import StateFilter
from aiogram.fsm.state import State
from aiogram.types import CallbackQuery, Message

from bot import screens
from bot.callbacks import PhoneAction
from bot.context import AppContext
from bot.filters import When
from bot.flows.base import Flow, step_screen
from bot.flows.buy import to_confirmation
from bot.runtime.metrics import CODES
from bot.screens.base import Screen
from bot.state.states import Buy, Menu, Phone
from services.codes import VerifyResult
from services.phones import InvalidPhone, mask_phone, normalize_phone
from services.sms import SmsDeliveryError


@step_screen(Phone.number)
async def number_screen(flow: Flow) -> Screen:
    return screens.ask_phone(flow.tr)


@step_screen(Phone.code)
async def code_screen(flow: Flow) -> Screen | None:
    pending = flow.session.phone_pending
    return screens.ask_code(flow.tr, pending, flow.session.code_state) if pending else None


def is_label(key: str) -> Callable[[Message, AppContext], Awaitable[bool]]:
    """A filter: the text is this button's label in any language (a reply-keyboard press)."""
    async def matches(message: Message, app: AppContext) -> bool:
        return message.text in app.texts.all_labels(key)
    return matches


def router() -> Router:
    r = Router(name="phone")

    @r.message(StateFilter(Phone.number), When(F.text), is_label("btn.back"))
    async def back(message: Message, flow: Flow) -> None:
        # Back to 企业名称, the step before (the reply keyboard goes with a word, not "返回").
        await flow.go(message, Buy.enterprise_name)

    @r.message(StateFilter(Phone.number), When(F.text), is_label("btn.contact"))
    async def contact(message: Message, flow: Flow) -> None:  # R17, from the reply keyboard
        await flow.go(message, Menu.contact)

    @r.message(StateFilter(Phone.number), When(F.contact))
    async def shared_contact(message: Message, flow: Flow) -> None:
        contact = message.contact
        assert contact is not None  # the filter above
        if message.from_user is None or contact.user_id != message.from_user.id:  # someone else's contact card
            await flow.again(message, flow.tr("phone.not_own"))
            return
        await take_number(message, flow, contact.phone_number, proven=True)  # Telegram vouches it is theirs

    @r.message(StateFilter(Phone.number), When(F.text))
    async def typed_number(message: Message, flow: Flow) -> None:
        await take_number(message, flow, message.text or "")

    @r.message(StateFilter(Phone.code), When(F.text))
    async def typed_code(message: Message, flow: Flow) -> None:
        session, tr = flow.session, flow.tr
        # Reminders of expiry reach the chats where the phone was verified: a right
        # code notes this one, in the same round trip.
        result = await flow.app.codes.verify(flow.user_id, session.phone_pending or "", message.text or "",
                                             remember_chat=(message.chat.id, tr.lang))
        if result.ok:
            session.phone, session.phone_pending = session.phone_pending, None
            session.chat_noted = session.chat_mark(tr.lang)  # noted by the code check itself
            await to_confirmation(message, flow, notice=tr("phone.verified", phone=mask_phone(session.phone)))
        else:
            await code_refused(message, flow, result)

    @r.callback_query(StateFilter(Phone.code), PhoneAction.filter(F.action == "resend"))
    async def resend(query: CallbackQuery, flow: Flow) -> None:
        await send_code(query, flow, flow.session.phone_pending or "")

    @r.callback_query(StateFilter(Phone.code), PhoneAction.filter(F.action == "change"))
    async def change(query: CallbackQuery, flow: Flow) -> None:
        flow.session.phone_pending = None
        await flow.go(query, Phone.number)

    return r


async def take_number(message: Message, flow: Flow, raw: str, *, proven: bool = False) -> None:
    try:
        phone = normalize_phone(raw)
    except InvalidPhone:
        await flow.again(message, flow.tr("phone.invalid"))
        return
    await flow.close_keyboard(message, flow.tr("phone.received", phone=mask_phone(phone)))
    await send_code(message, flow, phone, proven=proven)


async def send_code(event: Message | CallbackQuery, flow: Flow, phone: str, *, proven: bool = False) -> None:
    def remember(pending: str) -> None:
        flow.session.phone_pending = pending

    await request_code(event, flow, phone, number_step=Phone.number, code_step=Phone.code, remember=remember,
                       proven=proven)


def own_contact(message: Message) -> bool:
    """A shared contact Telegram says is the sender's own: proof they own the number."""
    contact = message.contact
    return contact is not None and message.from_user is not None and contact.user_id == message.from_user.id


async def code_refused(message: Message, flow: Flow, result: VerifyResult) -> None:
    """A code that did not verify, said once and truly (every flow's code step): a wrong one
    with the tries left; a dead one (too many tries, expired, none sent) turns the step into
    "get a new code", never a prompt to type one."""
    tr, status = flow.tr, result.status
    if status == "wrong":
        await flow.again(message, tr("phone.wrong", left=result.attempts_left))
    elif status in ("too_many", "expired", "no_code"):
        flow.session.code_state = "dead"
        await flow.again(message, tr(f"phone.{status}"))
    elif flow.session.code_state in ("dead", "waiting"):
        await flow.again(message)  # no code to type: the step already says what to do
    else:
        await flow.again(message, tr("phone.malformed"))


async def request_code(event: Message | CallbackQuery, flow: Flow, phone: str, *, number_step: State,
                       code_step: State, remember: Callable[[str], None], proven: bool = False) -> None:
    """F3's send step, shared by every flow that verifies a phone (purchase, 费用管理, trial):
    a code is live (sent, or still cooling down) → the code step; otherwise the number step
    again with the reason. `proven`: the number came as the user's own shared contact, so
    strangers' requests for it can never lock them out (services.codes)."""
    tr = flow.tr
    try:
        result = await flow.app.codes.send(flow.user_id, phone, tr.lang, proven=proven)
    except SmsDeliveryError:
        CODES.labels("failed").inc()
        await flow.go(event, number_step, notice=tr("phone.send_failed"))
        return
    except InvalidPhone:
        await flow.go(event, number_step, notice=tr("phone.invalid"))
        return
    CODES.labels(result.status).inc()
    if result.sent or result.status == "cooldown":
        remember(phone)
        notice = None
        if result.sent:
            flow.session.code_state = "sent"
        elif await flow.app.codes.live(flow.user_id, phone):  # the code sent before still works
            flow.session.code_state = "sent"
            notice = tr("phone.cooldown_live", seconds=result.retry_after)
        else:
            flow.session.code_state = "waiting"
            notice = tr("phone.cooldown", seconds=result.retry_after)
        await flow.go(event, code_step, notice=notice)
    elif result.status == "phone_limit":
        await flow.go(event, number_step, notice=tr("phone.phone_limit", minutes=-(-result.retry_after // 60)))
    elif result.status == "not_served":
        await flow.go(event, number_step, notice=tr("phone.not_served"))
    elif result.status == "prove_ownership":
        await flow.go(event, number_step, notice=tr("phone.prove_ownership", minutes=-(-result.retry_after // 60)))
    else:
        await flow.go(event, number_step, notice=tr("phone.user_limit"))
