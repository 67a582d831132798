"""Text people type that we keep and show again: normalised before it is stored (docs/security.md,
"Names and free texts").

- NFKC: compatibility forms become their plain form (full-width Ｌａｔｉｎ and digits, ligatures,
  circled and superscript characters), so one name has one spelling;
- control characters (C0/C1, e.g. ESC), format characters (the text-direction overrides,
  embeddings and isolates U+202A–U+202E, U+2066–U+2069, the direction marks U+200E/U+200F,
  zero-width U+200B–U+200D, U+2060, U+FEFF, tags), private-use, surrogate and unassigned
  code points are refused with a reason the flows turn into a clear message: they make a name
  read differently from what it is (U+202E turns "公司moc.evil" around), or look identical to
  another one;
- whitespace runs (including new lines, tabs, U+3000) become one space.
What other people control and we only show (a Telegram display name, a relayed customer
message kept in a transcript) is not refused but neutralised: the same characters removed.
Escaping for HTML or Telegram entities is the renderers' job, as before.
"""
from __future__ import annotations

import re
import unicodedata
from typing import Literal

Reason = Literal["empty", "too_short", "too_long", "no_letter", "command", "invisible", "control"]

REFUSED_CATEGORIES = {"Cc": "control", "Cf": "invisible", "Co": "control", "Cs": "control", "Cn": "control"}
NEUTRALISED_CATEGORIES = frozenset({"Cc", "Cf", "Cs"})  # unassigned ones may be a newer emoji: shown
KEPT_IN_FREE_TEXT = frozenset("\n")
# Emoji sequences are joined by U+200D and finished by U+FE0F (a variation selector, category Mn):
# a relayed message keeps them; a name never needs them.
EMOJI_JOINER = "\u200d"
WORD = re.compile(r"\w")


class TextRefused(ValueError):
    """`reason`: empty, too_short, too_long, no_letter, command, invisible (direction or
    zero-width characters), control."""

    def __init__(self, reason: Reason) -> None:
        super().__init__(reason)
        self.reason: Reason = reason


def unsafe_reason(text: str, *, keep: frozenset[str] = frozenset()) -> Reason | None:
    """Why `text` holds a character we do not store ("invisible" wins over "control")."""
    found: Reason | None = None
    for ch in text:
        if ch in keep:
            continue
        category = unicodedata.category(ch)
        reason = REFUSED_CATEGORIES.get(category)
        if reason == "invisible":
            return "invisible"
        if reason is not None:
            found = "control"
    return found


def clean_line(text: str, *, min_len: int = 1, max_len: int = 100, need_letter: bool = False,
               allow_command: bool = False) -> str:
    """One line as it is stored: NFKC, whitespace squeezed; TextRefused when it holds control or
    invisible characters, is too short or long, has no letter or digit (`need_letter`), or
    starts with "/" (a command, unless `allow_command`)."""
    text = unicodedata.normalize("NFKC", text or "")
    text = " ".join(text.split())  # every Unicode space, new lines and tabs included
    if not text:
        raise TextRefused("empty")
    reason = unsafe_reason(text)
    if reason is not None:
        raise TextRefused(reason)
    if len(text) < min_len:
        raise TextRefused("too_short")
    if len(text) > max_len:
        raise TextRefused("too_long")
    if need_letter and not WORD.search(text):
        raise TextRefused("no_letter")
    if not allow_command and text.startswith("/"):
        raise TextRefused("command")
    return text


def clean_free_text(text: str, *, max_len: int = 1000) -> str:
    """Several lines (a note, a reason): NFKC, spaces squeezed within each line, at most one
    empty line in a row; the same refusals as clean_line."""
    text = unicodedata.normalize("NFKC", (text or "").replace("\r\n", "\n").replace("\r", "\n"))
    lines = [" ".join(line.split()) for line in text.split("\n")]
    text = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
    if not text:
        raise TextRefused("empty")
    reason = unsafe_reason(text, keep=KEPT_IN_FREE_TEXT)
    if reason is not None:
        raise TextRefused(reason)
    if len(text) > max_len:
        raise TextRefused("too_long")
    return text


def enterprise_name(text: str) -> str:
    """An enterprise name as typed at purchase (R11), in chat or on the web: 2–50 characters
    with a letter or digit, not a command."""
    return clean_line(text, min_len=2, max_len=50, need_letter=True)


def neutralise(text: str, *, keep_emoji: bool = True) -> str:
    """What someone else controls, made safe to show: direction, zero-width and control
    characters removed (new lines and, for emoji, the joiner kept); nothing refused."""
    keep = KEPT_IN_FREE_TEXT | ({EMOJI_JOINER} if keep_emoji else frozenset())
    return "".join(ch for ch in text if ch in keep or unicodedata.category(ch) not in NEUTRALISED_CATEGORIES)


def name_key(text: str) -> str:
    """How two names are compared: NFKC, neutralised, spaces squeezed, case folded."""
    return " ".join(neutralise(unicodedata.normalize("NFKC", text or ""), keep_emoji=False).split()).casefold()
