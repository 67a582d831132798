"""The conversation's steps: one StatesGroup per flow. The default (no state) is 首页."""
from aiogram.fsm.state import State, StatesGroup


class Menu(StatesGroup):
    catalog = State()  # 购买套餐
    contact = State()  # 联系客服


class Buy(StatesGroup):  # F2
    edition = State()  # 版本选购
    years = State()
    pack = State()
    review = State()  # 产品选购页: the choice, priced, and its 立即购买 (→ 信息补充页)
    web_only = State()  # R2: chosen edition or total cannot be paid in chat
    enterprise_name = State()
    target = State()  # R18, R19: which verified enterprise the purchase is for
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


class Billing(StatesGroup):  # 费用管理 (F1) and what an enterprise buys for itself (F7–F9)
    enterprise = State()  # one enterprise's billing screen
    no_enterprise = State()  # the verified phone has joined no enterprise
    renew_years = State()  # 版本续费 (F7)
    renew_confirm = State()
    upgrade_edition = State()  # 升级版本 (F8)
    upgrade_years = State()  # from 体验版: a new edition for 1–3 years
    upgrade_confirm = State()
    services = State()  # 增值服务 (F9)
    service_option = State()
    service_confirm = State()
    pick = State()  # from 购买套餐: which of the phone's enterprises it is for
    web_pay = State()  # the order is made; it is paid on the web (R2, R4)
    phone = State()  # who is asking: the member's phone (F3's code service), then back to billing
    code = State()


class TrialApp(StatesGroup):  # 申请试用 (F10)
    enterprise = State()
    edition = State()
    confirm = State()  # the edition, and the one chance
    name = State()
    phone = State()
    code = State()
    industry = State()
    volume = State()
    review = State()
    done = State()


class Info(StatesGroup):  # information screens from 首页
    refund = State()  # 退费说明 (R5)
    invoice = State()  # 开票说明 (R16)
    faq = State()  # 常见问题
    editions = State()  # 了解企业版服务 / 选购版本: the edition details (R9)
    verify = State()  # 企业认证指引
