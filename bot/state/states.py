"""The conversation's steps: one StatesGroup per flow. The default (no state) is 首页."""
from aiogram.fsm.state import State, StatesGroup


class Menu(StatesGroup):
    catalog = State()  # 购买套餐
    contact = State()  # 联系客服


class Buy(StatesGroup):  # F2
    edition = State()  # 版本选购
    years = State()
    pack = State()
    web_only = State()  # R2: chosen edition or total cannot be paid in chat
    enterprise_name = State()
    confirm = State()
    payment = State()


class Phone(StatesGroup):  # F3
    number = State()
    code = State()


class Orders(StatesGroup):  # F6
    list = State()
    detail = State()


class Bind(StatesGroup):  # F5
    choose = State()
    confirm = State()
