"""Villager pages: what a phone shows after scanning the door plate, and the village's public affairs.

Server-rendered, mobile first, Chinese by default (English selectable with ``?lang=en``, remembered in a
cookie); every string goes through Flask-Babel's catalogues. Pages work without JavaScript; with it, the
phone itself verifies each shown entry against the signed checkpoint (``static/household.js``).
"""

from __future__ import annotations

from pathlib import Path

from babel.support import NullTranslations
from flask import Flask, g, request
from flask_babel import Babel, get_translations

LANGUAGES = ("zh", "en")
DEFAULT_LANGUAGE = "zh"
COOKIE = "lang"

babel = Babel()


def select_language() -> str:
    """``?lang=`` if valid, else the remembered choice, else Chinese."""
    asked = request.args.get("lang")
    if asked in LANGUAGES:
        return asked
    remembered = request.cookies.get(COOKIE)
    return remembered if remembered in LANGUAGES else DEFAULT_LANGUAGE


def request_translations() -> NullTranslations:
    """The request's catalogue, found once per request (Flask-Babel finds it anew for every string, about
    20 µs each, and a household page has some forty). A request has one language: none of ours switches
    language midway (``flask_babel.force_locale`` would need this cache cleared)."""
    if "translations" not in g:
        g.translations = get_translations()
    return g.translations  # type: ignore[no-any-return]


def init_translations(app: Flask) -> None:
    """Flask-Babel for ``app``'s pages: the request's language, and ``_()`` in the templates."""
    app.config.setdefault("BABEL_DEFAULT_LOCALE", DEFAULT_LANGUAGE)
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", str(Path(__file__).resolve().parent / "translations"))
    babel.init_app(app, locale_selector=select_language)
    app.jinja_env.install_gettext_callables(  # type: ignore[attr-defined]  # added by jinja2.ext.i18n
        gettext=lambda message: request_translations().ugettext(message),
        ngettext=lambda singular, plural, n: request_translations().ungettext(singular, plural, n),
        newstyle=True,
    )


def init_app(app: Flask) -> None:
    """The village's pages (the door plates' pages, the village page, the complaint channel, the console)."""
    from . import complaints, console
    from .views import bp

    init_translations(app)
    app.register_blueprint(bp)
    app.register_blueprint(complaints.bp)
    app.register_blueprint(console.bp)
