"""Locale texts: zh-CN first (the vendor's own labels), English second.

Texts live in `config/locales/<lang>.toml`, never in handlers. Keys are dotted paths.
"""
from __future__ import annotations

import string
import tomllib
from pathlib import Path
from typing import Any

LOCALES_DIR = Path(__file__).resolve().parent / "locales"
DEFAULT_LANG = "zh"
LANGS = ("zh", "en")


class TextsError(ValueError):
    pass


def _flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, str]:
    flat: dict[str, str] = {}
    for key, value in tree.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, path + "."))
        elif isinstance(value, str):
            flat[path] = value
        else:
            raise TextsError(f"{path}: texts must be strings, got {type(value).__name__}")
    return flat


def placeholders(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def language_of(language_code: str | None) -> str:
    """Telegram's language_code → our locale: English for English users, zh-CN otherwise."""
    return "en" if (language_code or "").lower().startswith("en") else DEFAULT_LANG


class Translator:
    def __init__(self, lang: str, table: dict[str, str], fallback: dict[str, str]) -> None:
        self.lang = lang
        self._table = table
        self._fallback = fallback

    def __call__(self, key: str, **values: Any) -> str:
        template = self._table.get(key) or self._fallback.get(key)
        if template is None:
            raise KeyError(f"no text for {key!r}")
        return template.format(**values) if values else template

    def has(self, key: str) -> bool:
        return key in self._table or key in self._fallback


# Parsed locale files by (path, modification time, size): every bot built in one process (the
# test suite builds hundreds) reads the same files, and a changed file is read again.
_PARSED: dict[tuple[str, int, int], dict[str, str]] = {}


def _read_table(path: Path) -> dict[str, str]:
    try:
        stat = path.stat()
        key = (str(path), stat.st_mtime_ns, stat.st_size)
        if key not in _PARSED:
            _PARSED[key] = _flatten(tomllib.loads(path.read_text(encoding="utf-8")))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise TextsError(f"locale {path}: {exc}") from None
    return _PARSED[key]


class Texts:
    def __init__(self, tables: dict[str, dict[str, str]], sources: dict[str, dict[str, str]] | None = None) -> None:
        self.tables = tables
        self.sources = sources or {}  # lang -> key -> the file it comes from

    @classmethod
    def load(cls, directory: Path = LOCALES_DIR) -> Texts:
        """`<lang>.toml` holds the core texts; a flow may keep its own in `<flow>.<lang>.toml`."""
        tables: dict[str, dict[str, str]] = {}
        sources: dict[str, dict[str, str]] = {}
        for lang in LANGS:
            tables[lang], sources[lang] = {}, {}
            for path in [directory / f"{lang}.toml", *sorted(directory.glob(f"*.{lang}.toml"))]:
                table = _read_table(path)
                for key in table.keys() & tables[lang].keys():
                    raise TextsError(f"locale {path}: {key} is also in {sources[lang][key]}")
                tables[lang].update(table)
                sources[lang].update(dict.fromkeys(table, f"config/locales/{path.name}"))
        return cls(tables, sources)

    def source(self, lang: str, key: str) -> str:
        return self.sources.get(lang, {}).get(key, f"config/locales/{lang}.toml")

    def problems(self) -> list[str]:
        """Keys missing from a locale, malformed templates, and placeholders that differ."""
        found = []
        base = self.tables[DEFAULT_LANG]
        fields: dict[str, dict[str, set[str] | None]] = {}
        for lang, table in self.tables.items():
            fields[lang] = {}
            for key in sorted(table):
                try:
                    fields[lang][key] = placeholders(table[key])
                except ValueError as exc:  # "{" alone, "{0" ...: str.format would raise
                    fields[lang][key] = None
                    found.append(f"{lang}: {key} is not a valid template ({exc})")
        for lang, table in self.tables.items():
            for key in sorted(base.keys() - table.keys()):
                found.append(f"{lang}: missing {key}")
            for key in sorted(table.keys() - base.keys()):
                found.append(f"{DEFAULT_LANG}: missing {key} (present in {lang})")
            for key in sorted(base.keys() & table.keys()):
                ours, theirs = fields[DEFAULT_LANG][key], fields[lang][key]
                if ours is not None and theirs is not None and ours != theirs:
                    found.append(f"{lang}: placeholders of {key} differ from {DEFAULT_LANG}")
        return found

    def for_lang(self, lang: str) -> Translator:
        return Translator(lang, self.tables.get(lang, {}), self.tables[DEFAULT_LANG])

    def all_labels(self, key: str) -> set[str]:
        """A label in every language, so a typed button label is understood in any locale."""
        return {table[key] for table in self.tables.values() if key in table}
