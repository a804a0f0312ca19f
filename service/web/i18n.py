"""The pages' words in English and French: one catalogue per language
(service/web/locales/LANG.json, the same keys in each; tests/test_web_i18n.py fails when
one lacks a key), the visitor's language and the switch between them.

The language is the one the visitor chose with the switch on every page (`?lang=fr`,
then kept in a cookie for a year), else the first of theirs we have in Accept-Language,
else English. Values are text with `{name}` placeholders; a key ending in `_html` holds
trusted markup from the catalogue (its placeholders are escaped). Keys under `js.` are
also given to the page's scripts.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from markupsafe import Markup, escape
from starlette.requests import Request

LANGUAGES = ("en", "fr")
DEFAULT = "en"
COOKIE = "hg_lang"
COOKIE_SECONDS = 365 * 24 * 3600
LOCALES = Path(__file__).resolve().parent / "locales"
CATALOGUE: dict[str, dict[str, str]] = {
    lang: json.loads((LOCALES / f"{lang}.json").read_text(encoding="utf-8")) for lang in LANGUAGES
}


def chosen_by_query(request: Request) -> str | None:
    """The language the switch asked for on this request (`?lang=`), if one we have."""
    asked = request.query_params.get("lang", "")
    return asked if asked in LANGUAGES else None


def language(request: Request) -> str:
    """The switch's choice, the cookie it left, Accept-Language, or English."""
    chosen = chosen_by_query(request) or request.cookies.get(COOKIE, "")
    if chosen in LANGUAGES:
        return chosen
    return from_accept_language(request.headers.get("accept-language", ""))


def from_accept_language(header: str) -> str:
    """The listed language with the highest q that we have (`fr-CA;q=0.9` counts as fr)."""
    best, best_q = DEFAULT, 0.0
    for position, part in enumerate(header.split(",")):
        name, _, params = part.strip().partition(";")
        lang = name.strip().lower().split("-")[0]
        q = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        q -= position * 1e-6  # equal q: the earlier one wins
        if lang in LANGUAGES and q > best_q:
            best, best_q = lang, q
    return best


def translate(lang: str, key: str, **params: Any) -> str:
    """The text of `key` in `lang`, its `{name}` placeholders filled. A key missing from
    the catalogue is a bug the catalogue test catches; shown as the key meanwhile. A key
    with plural forms (`key.one`, `key.other`) takes them by the `count` parameter."""
    if key not in CATALOGUE[DEFAULT] and "count" in params:
        count = params.pop("count")
        return plural(lang, key, count, **params)
    text = CATALOGUE.get(lang, CATALOGUE[DEFAULT]).get(key) or CATALOGUE[DEFAULT].get(key, key)
    if key.endswith("_html"):
        return Markup(text).format(**params) if params else Markup(text)
    return text.format(**params) if params else text


def plural(lang: str, key: str, count: int, **params: Any) -> str:
    """`key.one` or `key.other` for `count` (French counts 0 and 1 as one)."""
    one = count in (0, 1) if lang == "fr" else count == 1
    return translate(lang, f"{key}.{'one' if one else 'other'}", count=count, **params)


def seconds(value: float, lang: str) -> str:
    """A time in a video, in seconds to a tenth, with the language's decimal mark."""
    text = f"{value:.1f}"
    return text.replace(".", ",") if lang == "fr" else text


def long_date(lang: str, when: datetime) -> str:
    """4 December 2026 / 4 décembre 2026."""
    month = translate(lang, f"month.{when.month}")
    return translate(lang, "date.long", day=when.day, month=month, year=when.year)


def script_messages(lang: str) -> Mapping[str, str]:
    """The `js.` keys, for the page's scripts (without the prefix)."""
    return {k[3:]: v for k, v in CATALOGUE[lang].items() if k.startswith("js.")}


def missing_keys() -> dict[str, list[str]]:
    """For each language, the keys another language has and it lacks (or leaves empty)."""
    every = set().union(*(CATALOGUE[lang] for lang in LANGUAGES))
    return {
        lang: sorted(k for k in every if not CATALOGUE[lang].get(k, "").strip())
        for lang in LANGUAGES
    }


class Translator:
    """What templates call: t("key", name=...), tn("key", n), date(d), and the language."""

    def __init__(self, lang: str) -> None:
        self.lang = lang

    def __call__(self, key: str, **params: Any) -> str:
        return translate(self.lang, key, **params)

    def n(self, key: str, count: int, **params: Any) -> str:
        return plural(self.lang, key, count, **params)

    def date(self, when: datetime) -> str:
        return long_date(self.lang, when)

    def other_languages(self) -> list[tuple[str, str]]:
        """(code, name in that language) of the languages the switch offers."""
        return [(code, translate(code, "lang.name")) for code in LANGUAGES if code != self.lang]

    def escape(self, text: str) -> Markup:
        return escape(text)
