"""Translates the console's texts: German first, English switchable; one TOML catalogue per page area.

``strings/<area>.toml`` holds tables of ``key = {de = "...", en = "..."}``; a text's id is
``<area>.<key>`` (``members.title``). Placeholders use ``str.format`` names: ``{count}``.
A unit test checks that every id has both languages and every id a template uses exists.
"""

from __future__ import annotations

import tomllib
from functools import cache
from pathlib import Path
from typing import Any, Literal

Lang = Literal["de", "en"]
LANGUAGES: tuple[Lang, ...] = ("de", "en")
DEFAULT: Lang = "de"
STRINGS = Path(__file__).parent / "strings"


@cache
def catalogue() -> dict[str, dict[str, str]]:
    """Return every text by id, read once from ``strings/*.toml``."""
    texts: dict[str, dict[str, str]] = {}
    for path in sorted(STRINGS.glob("*.toml")):
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        for key, value in data.items():
            texts[f"{path.stem}.{key}"] = {lang: str(text) for lang, text in value.items()}
    return texts


def language(value: str | None) -> Lang:
    """Return a supported language for ``value`` (German when unknown)."""
    return "en" if value == "en" else DEFAULT


def translate(lang: Lang, key: str, /, **params: Any) -> str:
    """Return the text ``key`` in ``lang`` (German, then the id itself, when missing)."""
    entry = catalogue().get(key)
    if entry is None:
        return key
    text = entry.get(lang) or entry.get(DEFAULT) or key
    return text.format(**params) if params else text


class Translator:
    """Translates for one request's language; templates call it as ``t("members.title")``."""

    def __init__(self, lang: Lang) -> None:
        self.lang = lang

    def __call__(self, key: str, /, **params: Any) -> str:
        return translate(self.lang, key, **params)

    def has(self, key: str) -> bool:
        """Return whether the catalogue knows ``key``."""
        return key in catalogue()
