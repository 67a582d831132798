"""Jinja2 pages in the buyer's language: templates in bot/web/templates, texts from the locale
files (config/locales/checkout.*.toml and the core ones), never in the templates."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2
from aiohttp import web

from config.texts import Texts, Translator
from services.catalog import format_fen

TEMPLATES = Path(__file__).resolve().parent / "templates"
STATIC = Path(__file__).resolve().parent / "static"
LANG_COOKIE = "esign_lang"


def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=jinja2.select_autoescape(["html"]),
        undefined=jinja2.StrictUndefined,  # a missing value is a bug, not an empty string
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["money"] = format_fen
    return env


def choose_lang(request: web.Request, default: str | None) -> str:
    """?lang= (the page's switch), then the cookie it sets, then the chat's language, then the browser's."""
    asked = request.query.get("lang")
    if asked in ("zh", "en"):
        return asked
    cookie = request.cookies.get(LANG_COOKIE)
    if cookie in ("zh", "en"):
        return cookie
    if default in ("zh", "en"):
        return default
    accept = request.headers.get("Accept-Language", "").lower()
    return "en" if accept.startswith("en") else "zh"


class Renderer:
    def __init__(self, texts: Texts) -> None:
        self.texts = texts
        self.env = environment()

    def tr(self, lang: str) -> Translator:
        return self.texts.for_lang(lang)

    def page(self, request: web.Request, template: str, *, lang: str, status: int = 200,
             **context: Any) -> web.Response:
        tr = self.tr(lang)
        html = self.env.get_template(template).render(
            t=tr, lang=lang, other_lang="en" if lang == "zh" else "zh",
            path=request.path, **context,
        )
        response = web.Response(text=html, status=status, content_type="text/html", charset="utf-8")
        if request.query.get("lang") in ("zh", "en"):
            response.set_cookie(LANG_COOKIE, lang, path="/", max_age=30 * 86400, samesite="Lax", httponly=True)
        response.headers["Cache-Control"] = "no-store"
        return response
