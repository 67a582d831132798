"""The conversation as an explicit state machine: every step has one screen, built from the
step and the session alone. Handlers change the session and `go` to a step; a bad input or
a stale button shows the current step again (`screen_for`)."""
from __future__ import annotations

from dataclasses import dataclass

from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State
from aiogram.types import CallbackQuery, Message

from bot import screens
from bot.context import AppContext
from bot.state.session import Session
from bot.state.states import Bind, Buy, Menu, Orders, Phone
from bot.ui import Screen, show
from config.texts import Translator
from services.catalog import quote
from services.orders import Order, OrderStatus

ALL_STEPS: dict[str, State] = {
    s.state: s
    for group in (Menu, Buy, Phone, Orders, Bind)
    for s in group.__all_states__
}


@dataclass
class Flow:
    app: AppContext
    session: Session
    tr: Translator
    state: FSMContext
    user_id: int
    keyboard_closed: bool = False  # the phone step's reply keyboard was taken away in this update

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

    async def screen_for(self, step: str | None) -> Screen:
        app, session, tr, cart = self.app, self.session, self.tr, self.session.cart
        if step == Menu.catalog.state:
            return screens.catalog(tr, app.catalog)
        if step == Menu.contact.state:
            return screens.contact(tr)
        if step == Buy.edition.state:
            return screens.choose_edition(tr, app.catalog)
        if step == Buy.years.state and cart.edition:
            return screens.choose_years(tr, app.catalog, cart)
        if step == Buy.pack.state and cart.edition and cart.years:
            return screens.choose_pack(tr, app.catalog, cart)
        if step == Buy.web_only.state and cart.edition:
            total = quote(app.catalog, cart).total_fen if cart.pack_chosen else None
            return screens.web_only(tr, app.catalog, cart, app.settings.web_purchase_url, total)
        if step == Buy.enterprise_name.state:
            return screens.ask_enterprise_name(tr)
        if step == Buy.confirm.state and cart.pack_chosen and session.phone and session.enterprise_name:
            return screens.confirm(tr, quote(app.catalog, cart), session.enterprise_name, session.phone)
        if step == Phone.number.state:
            return screens.ask_phone(tr)
        if step == Phone.code.state and session.phone_pending:
            return screens.ask_code(tr, session.phone_pending)
        if step == Orders.list.state:
            return screens.order_list(tr, await app.orders.list_for_user(self.user_id))
        order = await self.order() if step in (Buy.payment.state, Orders.detail.state,
                                                Bind.choose.state, Bind.confirm.state) else None
        if step == Buy.payment.state and order and order.status is OrderStatus.PENDING:
            return screens.awaiting_payment(tr, order, app.catalog.order_ttl_minutes)
        # An order no longer waiting for payment (expired, cancelled, paid) shows as it is now.
        if step in (Buy.payment.state, Orders.detail.state) and order:
            bound_to = await app.enterprises.get(order.enterprise_id) if order.enterprise_id else None
            return screens.order_detail(tr, order, bound_to)
        if step == Bind.choose.state and order and session.phone:
            return screens.bind_choose(tr, order, await app.enterprises.for_phone(session.phone), session.phone)
        if step == Bind.confirm.state and order and session.bind_enterprise_id:
            enterprise = await app.enterprises.get(session.bind_enterprise_id)
            if enterprise:
                return screens.bind_confirm(tr, order, enterprise)
        # 首页, or a step whose data is gone: home is always a safe place to land.
        if step is not None:
            await self.state.set_state(None)
        return await self.home()

    async def home(self) -> Screen:
        enterprises = await self.app.enterprises.for_phone(self.session.phone) if self.session.phone else []
        return screens.home(self.tr, enterprises, self.app.clock.now())
