"""The baseline of `python -m bot bench`: bare aiogram 3 running a trivial linear FSM flow.

A Dispatcher with aiogram's own RedisStorage and RedisEventIsolation (keys with the bot id,
as the bot's), no middleware of ours, one message handler per step. Each step reads the
state (the state filter, as aiogram does for every handler), stores one field
(`state.update_data`), moves on (`state.set_state`) and replies (`message.answer`).
The replies go to the same fake Telegram as the bot's, so both pay the same for the Bot API.
"""
from __future__ import annotations

from typing import Any

from aiogram import Dispatcher, Router
from aiogram.filters import StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.fsm.storage.base import DefaultKeyBuilder
from aiogram.fsm.storage.redis import RedisEventIsolation, RedisStorage
from aiogram.types import Message
from redis.asyncio import Redis


def linear_states(steps: int) -> list[State]:
    group = type("Linear", (StatesGroup,), {f"s{i}": State() for i in range(1, steps)})
    return [getattr(group, f"s{i}") for i in range(1, steps)]


def baseline_dispatcher(redis: Redis, steps: int, ttl_seconds: int = 30 * 86400) -> Dispatcher:
    key_builder = DefaultKeyBuilder(with_bot_id=True)
    storage = RedisStorage(redis, key_builder=key_builder, state_ttl=ttl_seconds, data_ttl=ttl_seconds)
    dp = Dispatcher(storage=storage, events_isolation=RedisEventIsolation(redis, key_builder=key_builder))
    states: list[State | None] = [None, *linear_states(steps)]
    router = Router(name="linear")

    def step_handler(index: int):
        following = states[index + 1] if index + 1 < len(states) else None

        async def handle(message: Message, state: FSMContext) -> None:
            await state.update_data({f"step{index}": message.text})
            await state.set_state(following)
            await message.answer(f"Step {index + 1} of {steps} saved.")

        return handle

    for index, step in enumerate(states):
        router.message(StateFilter(step))(step_handler(index))
    dp.include_router(router)
    return dp


# --- the same Telegram traffic as the purchase ------------------------------------------------

# The kinds of update the purchase sends, in order (esign_devkit.bench.run.PURCHASE_STEPS): a message, a tap
# on an inline button, or a pre-checkout query.
PURCHASE_KINDS = ("message", "tap", "tap", "tap", "tap", "tap", "message", "message", "message",
                  "tap", "pre_checkout", "message", "tap", "tap", "tap")
MIRROR_PREFIX = "st"  # callback data of the mirror's buttons: st:{step}:{choice}


def _keyboard(step: int) -> Any:
    from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup

    rows = [[InlineKeyboardButton(text=f"选项 {j + 1} · ¥{4800 * (j + 1):,}.00", callback_data=f"{MIRROR_PREFIX}:{step}:{j}")]
            for j in range(4)]
    rows.append([InlineKeyboardButton(text="🏠 首页", callback_data="nav:home"),
                 InlineKeyboardButton(text="联系客服", callback_data="nav:contact")])
    return InlineKeyboardMarkup(inline_keyboard=rows)


def mirror_dispatcher(redis: Redis, steps: int, ttl_seconds: int = 30 * 86400) -> Dispatcher:
    """Bare aiogram with the purchase's Telegram traffic: the same kinds of update (messages,
    taps on a keyboard message, a pre-checkout query), each answered as the bot answers it — a
    message with a keyboard, the tapped message edited with a keyboard and the tap answered
    (aiogram's CallbackAnswerMiddleware), the pre-checkout answered. Each step still only
    reads the state, stores one field and moves on."""
    from aiogram.types import CallbackQuery, PreCheckoutQuery
    from aiogram.utils.callback_answer import CallbackAnswerMiddleware

    key_builder = DefaultKeyBuilder(with_bot_id=True)
    storage = RedisStorage(redis, key_builder=key_builder, state_ttl=ttl_seconds, data_ttl=ttl_seconds)
    dp = Dispatcher(storage=storage, events_isolation=RedisEventIsolation(redis, key_builder=key_builder))
    dp.callback_query.middleware(CallbackAnswerMiddleware())
    states: list[State | None] = [None, *linear_states(steps)]
    router = Router(name="mirror")

    def handlers(index: int):
        following = states[index + 1] if index + 1 < len(states) else None
        text = f"第 {index + 1} 步（共 {steps} 步）：" + "请选择下方的选项继续。" * 8

        async def on_message(message: Message, state: FSMContext) -> None:
            await state.update_data({f"step{index}": message.text or "…"})
            await state.set_state(following)
            await message.answer(text, reply_markup=_keyboard(index))

        async def on_tap(query: CallbackQuery, state: FSMContext) -> None:
            await state.update_data({f"step{index}": query.data})
            await state.set_state(following)
            await query.message.edit_text(text, reply_markup=_keyboard(index))

        async def on_pre_checkout(query: PreCheckoutQuery, state: FSMContext) -> None:
            await state.update_data({f"step{index}": query.invoice_payload})
            await state.set_state(following)
            await query.answer(ok=True)

        return on_message, on_tap, on_pre_checkout

    for index, step in enumerate(states):
        on_message, on_tap, on_pre_checkout = handlers(index)
        router.message(StateFilter(step))(on_message)
        router.callback_query(StateFilter(step))(on_tap)
        router.pre_checkout_query(StateFilter(step))(on_pre_checkout)
    dp.include_router(router)
    return dp
