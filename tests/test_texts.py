"""Locale texts (config/texts.py, config/locales/*.toml)."""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from config.texts import DEFAULT_LANG, LANGS, LOCALES_DIR, Texts, TextsError, language_of, placeholders


def write_locales(directory: Path, zh: str, en: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "zh.toml").write_text(zh, encoding="utf-8")
    (directory / "en.toml").write_text(en, encoding="utf-8")
    return directory


ZH = '[home]\ntitle = "首页"\noverview = "🏢 {name}\\n版本：{edition}"\n[btn]\nback = "返回"\n'
EN = '[home]\ntitle = "Home"\noverview = "🏢 {name}\\nEdition: {edition}"\n[btn]\nback = "Back"\n'


# --- the shipped locales -------------------------------------------------------------------


def test_shipped_locales_agree():
    texts = Texts.load()
    assert texts.problems() == []
    assert set(texts.tables) == set(LANGS) == {"zh", "en"}
    assert texts.tables["zh"].keys() == texts.tables["en"].keys()
    assert len(texts.tables["zh"]) > 50


def test_shipped_locales_name_the_vendor_labels():
    texts = Texts.load()
    zh, en = texts.for_lang("zh"), texts.for_lang("en")
    assert zh("edition.advanced") == "高级版" and en("edition.advanced") == "Advanced"
    assert zh("btn.my_orders") == "我的订单" and en("btn.my_orders") == "My orders"
    assert zh("btn.bind_now") == "立即绑定"
    assert zh("status.paid") == "已支付待绑定"
    assert texts.all_labels("btn.my_orders") == {"我的订单", "My orders"}


def test_every_shipped_template_formats_with_its_placeholders():
    texts = Texts.load()
    for lang, table in texts.tables.items():
        for key, template in table.items():
            values = dict.fromkeys(placeholders(template), "X")
            texts.for_lang(lang)(key, **values)  # no KeyError, no IndexError


# A rule or flow id of docs/rules.md (R7, F3, also in full-width brackets) or a test id: the project's own words,
# never the user's or the agent's.
INTERNAL_ID = re.compile(r"(?<![A-Za-z0-9])(?:R|F)\d{1,2}(?![0-9])|test_[a-z0-9_]+")
URL = re.compile(r"https?://\S+")  # a link's random token may hold "-R5x"; links are no words


def names_an_internal_id(text: str) -> bool:
    return INTERNAL_ID.search(URL.sub("", text)) is not None


SAMPLES = {"name": "深圳示例科技有限公司", "phone": "+86*******8000", "order_id": "o0123456789ab",
           "total": "¥4,800.00", "amount": "¥4,800.00", "url": "https://example.com/checkout/abc",
           "minutes": "30", "seconds": "60", "days": "7", "years": "2", "left": "3", "contracts": "600"}


def rendered_texts() -> list[tuple[str, str, str]]:
    """Every text of every locale (config/locales/*.toml, zh and en), filled in with sample values."""
    texts = Texts.load()
    found = []
    for lang, table in texts.tables.items():
        tr = texts.for_lang(lang)
        for key, template in table.items():
            values = {name: SAMPLES.get(name, "示例" if lang == "zh" else "sample") for name in placeholders(template)}
            found.append((lang, key, tr(key, **values)))
    return found


def test_no_rendered_text_names_a_rule_or_test_id():
    rendered = rendered_texts()
    assert {lang for lang, _, _ in rendered} == {"zh", "en"} and len(rendered) > 1000
    leaks = [f"{lang}: {key}: {text!r}" for lang, key, text in rendered if names_an_internal_id(text)]
    assert leaks == []


@pytest.mark.parametrize("text", ["合同加量包：暂不可购买（R7）", "cannot be paid in chat (R2)", "see F3", "test_buy_advanced"])
def test_the_internal_id_pattern_catches_what_leaked_before(text):
    assert names_an_internal_id(text)


@pytest.mark.parametrize("text", ["¥19,800.00", "签署报告 1,000 份", "RFC", "R&D", "F-Droid",
                                  "http://127.0.0.1:8080/checkout/ab-R5x_F3"])
def test_the_internal_id_pattern_leaves_ordinary_text_alone(text):
    assert not names_an_internal_id(text)


def test_the_shipped_files_copied_elsewhere_load_the_same(tmp_path):
    for path in LOCALES_DIR.glob("*.toml"):  # the core files and every flow's own
        shutil.copy(path, tmp_path / path.name)
    assert Texts.load(tmp_path).tables == Texts.load().tables


# --- problems ------------------------------------------------------------------------------


def test_a_tiny_consistent_pair_has_no_problems(tmp_path):
    assert Texts.load(write_locales(tmp_path, ZH, EN)).problems() == []


def test_a_key_missing_in_en_is_reported(tmp_path):
    en = EN.replace('back = "Back"\n', "")
    assert Texts.load(write_locales(tmp_path, ZH, en)).problems() == ["en: missing btn.back"]


def test_a_key_missing_in_zh_is_reported(tmp_path):
    en = EN + 'extra = "Extra"\n'
    problems = Texts.load(write_locales(tmp_path, ZH, en)).problems()
    assert problems == ["zh: missing btn.extra (present in en)"]


def test_a_differing_placeholder_is_reported(tmp_path):
    en = EN.replace("{edition}", "{edition_name}")
    problems = Texts.load(write_locales(tmp_path, ZH, en)).problems()
    assert problems == ["en: placeholders of home.overview differ from zh"]


def test_a_dropped_placeholder_is_reported(tmp_path):
    en = EN.replace("\\nEdition: {edition}", "")
    problems = Texts.load(write_locales(tmp_path, ZH, en)).problems()
    assert problems == ["en: placeholders of home.overview differ from zh"]


def test_a_malformed_template_is_reported_not_raised(tmp_path):
    en = EN.replace('title = "Home"', 'title = "Home {"')
    problems = Texts.load(write_locales(tmp_path, ZH, en)).problems()
    assert len(problems) == 1 and problems[0].startswith("en: home.title") and "template" in problems[0]


def test_a_non_string_text_is_refused(tmp_path):
    with pytest.raises(TextsError, match=r"home\.title"):
        Texts.load(write_locales(tmp_path, ZH, EN.replace('title = "Home"', "title = 3")))


def test_broken_toml_and_a_missing_locale_are_refused(tmp_path):
    with pytest.raises(TextsError, match=r"en\.toml"):
        Texts.load(write_locales(tmp_path / "broken", ZH, "[home\n"))
    only_zh = tmp_path / "only_zh"
    only_zh.mkdir()
    (only_zh / "zh.toml").write_text(ZH, encoding="utf-8")
    with pytest.raises(TextsError, match=r"en\.toml"):
        Texts.load(only_zh)


def test_placeholders():
    assert placeholders("{a} and {b} and {a}") == {"a", "b"}
    assert placeholders("no fields, {{escaped}}") == set()


# --- language_of ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "lang"),
    [("en", "en"), ("en-US", "en"), ("en-gb", "en"), ("EN", "en"),
     ("zh-hans", "zh"), ("zh-CN", "zh"), ("zh", "zh"), (None, "zh"), ("", "zh"), ("ru", "zh"),
     ("es", "zh")],
)
def test_language_of(code, lang):
    assert language_of(code) == lang
    assert DEFAULT_LANG == "zh"


# --- Translator ----------------------------------------------------------------------------


def test_translator_falls_back_to_zh_for_a_key_missing_in_en(tmp_path):
    en = EN.replace('back = "Back"\n', "")
    texts = Texts.load(write_locales(tmp_path, ZH, en))
    en_tr = texts.for_lang("en")
    assert en_tr.lang == "en"
    assert en_tr("home.title") == "Home"
    assert en_tr("btn.back") == "返回"
    assert en_tr("home.overview", name="Acme", edition="Advanced") == "🏢 Acme\nEdition: Advanced"


def test_translator_for_an_unknown_language_uses_zh():
    tr = Texts.load().for_lang("ru")
    assert tr("edition.flagship") == "旗舰版"


def test_translator_refuses_an_unknown_key():
    with pytest.raises(KeyError, match=r"no\.such\.key"):
        Texts.load().for_lang("en")("no.such.key")


def test_translator_needs_every_placeholder(tmp_path):
    tr = Texts.load(write_locales(tmp_path, ZH, EN)).for_lang("en")
    with pytest.raises(KeyError):
        tr("home.overview", name="Acme")


def test_every_conversation_step_has_a_name_for_the_staff_card():
    """An agent reads where the customer was (the card's 来源) as words, never a raw step name."""
    from aiogram.fsm.state import StatesGroup

    from bot.screens.support import where_label
    from bot.state import states

    steps = [state.state for group in vars(states).values()
             if isinstance(group, type) and issubclass(group, StatesGroup) and group is not StatesGroup
             for state in group.__all_states__]
    assert len(steps) > 40
    texts = Texts.load()
    for lang in LANGS:
        tr = texts.for_lang(lang)
        unnamed = [step for step in steps if where_label(tr, step) == step]
        assert unnamed == [], (lang, unnamed)
