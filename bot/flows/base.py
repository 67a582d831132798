"""The conversation as an explicit state machine: every step has one screen, built from the
step and the session alone. Handlers change the session and `go` to a step; a bad input or
a stale button shows the current step again (`screen_for`)."""
from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from aiogram.exceptions import TelegramBadRequest
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State
from aiogram.fsm.storage.base import StorageKey
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message

from bot import screens
from bot.context import AppContext
from bot.screens.base import Screen
from bot.state.conversations import ConversationStorage
from bot.state.session import Session
from bot.state.states import Phone
from config.texts import Translator
from services.enterprises import Enterprise
from services.orders import Order
from services.text_input import TextRefused

StepScreen = Callable[["Flow"], Awaitable[Screen | None]]

# Each flow module registers the screen of each of its steps here (`@step_screen(...)`).
STEP_SCREENS: dict[str, StepScreen] = {}


def step_screen(*steps: State) -> Callable[[StepScreen], StepScreen]:
    """Register the screen shown at these steps; it returns None when the step's data is gone."""
    def register(render: StepScreen) -> StepScreen:
        for step in steps:
            assert step.state is not None, "a step of a StatesGroup"
            STEP_SCREENS[step.state] = render
        return render
    return register


@dataclass
class Flow:
    app: AppContext
    session: Session
    tr: Translator
    state: FSMContext
    user_id: int
    keyboard_closed: bool = False  # the phone step's reply keyboard was taken away in this update
    enterprises_read: dict[str, Enterprise] = field(default_factory=dict)  # in this update, by id

    async def step(self) -> str | None:
        return await self.state.get_state()

    async def go(self, event: Message | CallbackQuery, step: State | None, *, notice: str | None = None) -> None:
        if step != Phone.number and await self.step() == Phone.number.state:
            # Only the phone step has a reply keyboard; it would outlive the step otherwise.
            await self.close_keyboard(event, self.tr("phone.closed"))
        await self.state.set_state(step)
        await show(event, await self.screen_for(step.state if step else None), notice=notice)

    async def close_keyboard(self, event: Message | CallbackQuery, text: str) -> None:
        """Take the reply keyboard away (Telegram needs a message for that), once per update."""
        if not self.keyboard_closed:
            await show(event, screens.keyboard_removed(text))
            self.keyboard_closed = True

    async def again(self, event: Message | CallbackQuery, notice: str | None = None) -> None:
        """Show the current step once more, with a word on what was wrong."""
        await show(event, await self.screen_for(await self.step()), notice=notice)

    async def order(self) -> Order | None:
        """The order on screen, if it is the user's own."""
        if not self.session.order_id:
            return None
        order = await self.app.orders.get(self.session.order_id)
        return order if order and order.user_id == self.user_id else None

    async def phone_enterprises(self) -> list[Enterprise]:
        """The enterprises the verified phone has joined; `enterprise` knows them afterwards."""
        if not self.session.phone:
            return []
        found = await self.app.enterprises.for_phone(self.session.phone)
        self.enterprises_read.update((e.id, e) for e in found)
        return found

    async def enterprise(self, enterprise_id: str) -> Enterprise | None:
        """An enterprise, as read earlier in this update if it was."""
        known = self.enterprises_read.get(enterprise_id)
        return known if known is not None else await self.app.enterprises.get(enterprise_id)

    async def screen_for(self, step: str | None) -> Screen:
        render = STEP_SCREENS.get(step or "")
        screen = await render(self) if render else None
        if screen is not None:
            return screen
        # 首页, or a step whose data is gone: home is always a safe place to land.
        if step is not None:
            await self.state.set_state(None)
        return await self.home()

    async def home(self) -> Screen:
        enterprises = await self.app.enterprises.for_phone(self.session.phone) if self.session.phone else []
        return screens.home(self.tr, enterprises, self.app.clock.now())


async def show(event: Message | CallbackQuery, screen: Screen, *, notice: str | None = None) -> None:
    """Answer a tap by editing its message; answer text with a new message.

    A reply keyboard cannot be attached to an edited message, so such screens always go new.
    """
    text = f"{notice}\n\n{screen.text}" if notice else screen.text
    if isinstance(event, CallbackQuery):
        message = event.message
        if isinstance(message, Message) and isinstance(screen.markup, InlineKeyboardMarkup | None):
            try:
                await message.edit_text(text, reply_markup=screen.markup)
                return
            except TelegramBadRequest as exc:
                if "message is not modified" in exc.message:
                    return
                # Too old, deleted or not text: fall through and send the screen anew.
        chat_id = message.chat.id if message else event.from_user.id
        assert event.bot is not None  # an update fed to the dispatcher carries its bot
        await event.bot.send_message(chat_id, text, reply_markup=screen.markup)
        return
    await event.answer(text, reply_markup=screen.markup)


@asynccontextmanager
async def open_flow(app: AppContext, key: StorageKey, tr: Translator) -> AsyncIterator[Flow]:
    """A user's conversation changed from outside an update of theirs (the help desk, a web
    payment): opened under the user's lock like an update, stored when the block succeeds."""
    async with app.conversations.open(key) as conversation:
        assert conversation is not None  # no update id: never a repeat
        session = Session.from_text(conversation.data)
        state = FSMContext(ConversationStorage(app.conversations), key)
        yield Flow(app=app, session=session, tr=tr, state=state, user_id=key.user_id)
        conversation.set_data(session.to_text())


def unsafe_or(refused: TextRefused, otherwise: str) -> str:
    """The text key for a refused answer: the unsafe characters it held (services.text_input),
    or the step's own rule (`otherwise`)."""
    return "error.unsafe_text" if refused.reason in ("invisible", "control") else otherwise
