"""Locale texts (config/texts.py, config/locales/*.toml)."""
from __future__ import annotations

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
