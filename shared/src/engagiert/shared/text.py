"""Folds text for comparison: the same name typed, pasted or imported differently compares equal."""

from __future__ import annotations

import unicodedata

_INVISIBLE_CATEGORIES = frozenset({"Cf", "Cc"})
"""Format characters (zero-width space and joiners, soft hyphen, BOM, bidi marks) and controls."""
_BLANKS = "\t\n\r"


def remove_invisible(text: str) -> str:
    """Return ``text`` without invisible format and control characters (tab and newlines become blanks)."""
    kept = (ch for ch in text if ch in _BLANKS or unicodedata.category(ch) not in _INVISIBLE_CATEGORIES)
    return "".join(" " if ch in _BLANKS else ch for ch in kept)


def fold(text: str) -> str:
    """Return ``text`` folded for duplicate keys and search: NFKC, invisible characters removed, case and blanks folded.

    NFKC composes what NFD decomposed (``e`` + combining acute = ``é``) and maps compatibility
    forms (full-width letters, ligatures, non-breaking spaces) to their plain form.
    """
    return " ".join(remove_invisible(unicodedata.normalize("NFKC", text)).casefold().split())
