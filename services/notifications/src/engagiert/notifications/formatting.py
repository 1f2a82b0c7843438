"""Formats dates, times and numbers (Babel, Europe/Berlin) and names statuses and kinds, per language.

A German letter says "Samstag, 5. Dezember 2026, 17:00 Uhr", an English one "Saturday, 5 December
2026, 5:00 PM": the patterns are explicit, so a CLDR update cannot change a letter unseen.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Final
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_datetime
from babel.numbers import format_decimal

TIMEZONE: Final = ZoneInfo("Europe/Berlin")
"""Where the municipalities are: every time in a letter is shown in this zone."""


@dataclass(frozen=True, kw_only=True)
class _Patterns:
    locale: str
    date: str
    weekday_date: str
    time: str


_PATTERNS: Final[dict[str, _Patterns]] = {
    "de": _Patterns(locale="de_DE", date="d. MMMM y", weekday_date="EEEE, d. MMMM y", time="HH:mm 'Uhr'"),
    # "en" (not en_GB): CLDR's en_GB writes "5:00 pm"; the day-month order is set by the pattern.
    "en": _Patterns(locale="en", date="d MMMM y", weekday_date="EEEE, d MMMM y", time="h:mm a"),
}

LABELS: Final[dict[str, dict[str, dict[str, str]]]] = {
    "de": {
        "answer": {
            "accepted": "Zusage",
            "declined": "Absage",
            "waitlisted": "Warteliste",
        },
        "honour": {
            "ehrenamtskarte": "Ehrenamtskarte NRW",
            "jubilaeums-ehrenamtskarte": "Jubiläums-Ehrenamtskarte NRW",
            "engagementnachweis": "Engagementnachweis NRW",
            "local-award": "Auszeichnung für ehrenamtliches Engagement",
        },
        "event": {
            "Feierstunde": "Feierstunde",
            "Ehrenamtsempfang": "Ehrenamtsempfang",
            "Tag des Ehrenamts": "Tag des Ehrenamts",
            "Preisverleihung": "Preisverleihung",
            "Jubiläumsehrung": "Jubiläumsehrung",
            "Sonstiges": "Veranstaltung",
        },
        "status": {
            "queued": "geplant",
            "sending": "wird gesendet",
            "sent": "gesendet",
            "failed": "fehlgeschlagen",
            "suppressed": "nicht gesendet",
            "cancelled": "zurückgezogen",
            "letter": "als Brief",
        },
    },
    "en": {
        "answer": {
            "accepted": "Accepted",
            "declined": "Declined",
            "waitlisted": "Waiting list",
        },
        "honour": {
            "ehrenamtskarte": "Ehrenamtskarte NRW",
            "jubilaeums-ehrenamtskarte": "Jubiläums-Ehrenamtskarte NRW",
            "engagementnachweis": "Engagementnachweis NRW",
            "local-award": "award for volunteering",
        },
        "event": {
            "Feierstunde": "ceremony",
            "Ehrenamtsempfang": "reception for volunteers",
            "Tag des Ehrenamts": "International Volunteer Day",
            "Preisverleihung": "award ceremony",
            "Jubiläumsehrung": "anniversary honours",
            "Sonstiges": "event",
        },
        "status": {
            "queued": "scheduled",
            "sending": "being sent",
            "sent": "sent",
            "failed": "failed",
            "suppressed": "not sent",
            "cancelled": "withdrawn",
            "letter": "by post",
        },
    },
}
"""Words for the values of the contracts' enumerations, per language."""


class Formatter:
    """Formats values for one language; templates call it as ``fmt``."""

    def __init__(self, language: str) -> None:
        self.language = language if language in _PATTERNS else "de"
        self._p = _PATTERNS[self.language]

    def date(self, value: dt.date | dt.datetime) -> str:
        """Return a date as in a letter: "5. Dezember 2026" / "5 December 2026"."""
        return format_date(_local_date(value), self._p.date, locale=self._p.locale)

    def weekday_date(self, value: dt.date | dt.datetime) -> str:
        """Return a date with its weekday: "Samstag, 5. Dezember 2026"."""
        return format_date(_local_date(value), self._p.weekday_date, locale=self._p.locale)

    def time(self, value: dt.datetime) -> str:
        """Return a time of day in Europe/Berlin: "17:00 Uhr" / "5:00 PM"."""
        return format_datetime(value, self._p.time, tzinfo=TIMEZONE, locale=self._p.locale)

    def datetime(self, value: dt.datetime) -> str:
        """Return weekday, date and time in Europe/Berlin: "Samstag, 5. Dezember 2026, 17:00 Uhr"."""
        return f"{self.weekday_date(value)}, {self.time(value)}"

    def time_range(self, start: dt.datetime, end: dt.datetime | None) -> str:
        """Return the start, with the end time when it ends the same day: "17:00 bis 20:00 Uhr"."""
        if end is None:
            return self.datetime(start)
        if _local_date(end) != _local_date(start):
            return f"{self.datetime(start)} – {self.datetime(end)}"
        if self.language == "de":
            start_clock = format_datetime(start, "HH:mm", tzinfo=TIMEZONE, locale=self._p.locale)
            return f"{self.weekday_date(start)}, {start_clock} bis {self.time(end)}"
        return f"{self.weekday_date(start)}, {self.time(start)} to {self.time(end)}"

    def number(self, value: float, *, digits: int = 1) -> str:
        """Return a number with the language's separators: "1.234,5" / "1,234.5"."""
        pattern = "#,##0" + ("." + "#" * digits if digits else "")
        return format_decimal(value, format=pattern, locale=self._p.locale)

    def label(self, group: str, value: Any) -> str:
        """Return the word for an enumeration value (the value itself when none is known)."""
        return LABELS[self.language].get(group, {}).get(str(value), str(value))

    def answer(self, value: str) -> str:
        """Return an RSVP answer in words."""
        return self.label("answer", value)

    def honour(self, kind: str, title: str | None = None) -> str:
        """Return the name of an honour: the local award's own title, else the kind's name."""
        return title or self.label("honour", kind)

    def honour_object(self, kind: str, title: str | None = None) -> str:
        """Return an honour with its article as an object: "den Engagementnachweis NRW" / "the ..."."""
        if kind == "local-award" and title:
            return f"die Auszeichnung „{title}“" if self.language == "de" else f"the award “{title}”"
        article = {"engagementnachweis": "den"}.get(kind, "die") if self.language == "de" else "the"
        return f"{article} {self.honour(kind, title)}"

    def honour_yours(self, kind: str, title: str | None = None) -> str:
        """Return an honour with the possessive: "Ihr Engagementnachweis NRW" / "your ..."."""
        if self.language != "de":
            return f"your {self.honour(kind, title)}"
        if kind == "local-award" and title:
            return f"Ihre Auszeichnung „{title}“"
        return f"{'Ihr' if kind == 'engagementnachweis' else 'Ihre'} {self.honour(kind, title)}"

    def event_kind(self, value: str) -> str:
        """Return a kind of recognition event in words."""
        return self.label("event", value)

    def status(self, value: str) -> str:
        """Return a delivery status in words."""
        return self.label("status", value)


def _local_date(value: dt.date | dt.datetime) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.astimezone(TIMEZONE).date() if value.tzinfo else value.date()
    return value
