# The part of Flask-Babel that villageledger uses (the package has no py.typed; ``Babel`` is unannotated).
from collections.abc import Callable
from typing import Any

import flask
from babel import Locale
from babel.support import NullTranslations, Translations

class LazyString:
    """A string translated when it is used (``str()``, formatting, Jinja)."""
    def __init__(self, func: Callable[..., str], *args: Any, **kwargs: Any) -> None: ...
    def __html__(self) -> str: ...
    def __len__(self) -> int: ...

class Babel:
    def __init__(
        self, app: flask.Flask | None = ..., date_formats: dict[str, str | None] | None = ...,
        configure_jinja: bool = ..., *args: Any, **kwargs: Any,
    ) -> None: ...
    def init_app(
        self,
        app: flask.Flask,
        default_locale: str = ...,
        default_domain: str = ...,
        default_translation_directories: str = ...,
        default_timezone: str = ...,
        locale_selector: Callable[[], str | None] | None = ...,
        timezone_selector: Callable[[], str | None] | None = ...,
    ) -> None: ...

def get_translations() -> Translations | NullTranslations: ...
def get_locale() -> Locale | None: ...
def lazy_gettext(string: str, **variables: Any) -> LazyString: ...
def gettext(string: str, **variables: Any) -> str: ...
