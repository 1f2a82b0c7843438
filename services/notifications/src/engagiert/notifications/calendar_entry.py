"""Builds the iCalendar entry (RFC 5545, RFC 5546 methods) that travels with a letter about an event.

The UID is derived from the invitation, so every later letter about it (a confirmation, a change,
the cancellation) updates the one entry in the member's calendar; SEQUENCE is the event's change
counter. Times carry ``TZID=Europe/Berlin`` with the zone's definition included.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Literal

from icalendar import Calendar, Event, vCalAddress, vText

from engagiert.notifications.formatting import TIMEZONE

Method = Literal["REQUEST", "CANCEL"]
DEFAULT_DURATION = timedelta(hours=2)
"""How long an entry lasts when the event names no end."""


@dataclass(frozen=True, kw_only=True)
class CalendarEntry:
    """An iCalendar object ready to attach: its bytes and its iTIP method."""

    method: Method
    content: bytes
    uid: str

    @property
    def filename(self) -> str:
        """Return the attachment's file name."""
        return "absage.ics" if self.method == "CANCEL" else "termin.ics"


def uid_for(invitation_id: str, domain: str) -> str:
    """Return the entry's UID for an invitation: the same for every letter about it."""
    return f"invitation-{invitation_id}@{domain}"


def build_entry(
    *,
    method: Method,
    uid: str,
    sequence: int,
    summary: str,
    starts_at: datetime,
    ends_at: datetime | None,
    location: str,
    description: str,
    url: str | None,
    organizer_name: str,
    organizer_email: str | None,
    attendee_name: str,
    attendee_email: str | None,
    categories: str,
    accepted: bool = False,
    stamp: datetime | None = None,
) -> CalendarEntry:
    """Return an entry with a TZID of Europe/Berlin and the VTIMEZONE that defines it."""
    cal = Calendar()
    cal.add("prodid", "-//engagiert//Briefe der Kommune//DE")
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("method", method)
    event = Event()
    event.add("uid", uid)
    event.add("sequence", sequence)
    event.add("dtstamp", (stamp or datetime.now(UTC)).astimezone(UTC))
    start = starts_at.astimezone(TIMEZONE)
    event.add("dtstart", start)
    event.add("dtend", (ends_at or starts_at + DEFAULT_DURATION).astimezone(TIMEZONE))
    event.add("summary", summary)
    event.add("location", location)
    event.add("description", description)
    event.add("categories", [categories])
    if url:
        event.add("url", url)
    event.add("status", "CANCELLED" if method == "CANCEL" else "CONFIRMED")
    event.add("transp", "OPAQUE")
    if organizer_email:
        organizer = vCalAddress(f"mailto:{organizer_email}")
        organizer.params["cn"] = vText(organizer_name)
        event.add("organizer", organizer)
    if attendee_email:
        attendee = vCalAddress(f"mailto:{attendee_email}")
        attendee.params["cn"] = vText(attendee_name)
        attendee.params["role"] = vText("REQ-PARTICIPANT")
        attendee.params["partstat"] = vText("ACCEPTED" if accepted else "NEEDS-ACTION")
        # The answer is given on the RSVP page, not by a calendar reply.
        attendee.params["rsvp"] = vText("FALSE")
        event.add("attendee", attendee)
    cal.add_component(event)
    # The VTIMEZONE is the same for every letter of a year: built once, it is put before the VEVENT
    # (its serialisation cost two thirds of a letter's rendering).
    content = cal.to_ical().replace(b"BEGIN:VEVENT", _timezone_block(start.year) + b"BEGIN:VEVENT", 1)
    return CalendarEntry(method=method, content=content, uid=uid)


@functools.lru_cache(maxsize=8)
def _timezone_block(year: int) -> bytes:
    """Return the VTIMEZONE of Europe/Berlin with its rules from the year before ``year`` to the year after."""
    cal = Calendar()
    probe = Event()
    probe.add("dtstart", datetime(year, 6, 1, 12, 0, tzinfo=TIMEZONE))
    cal.add_component(probe)
    # Only the years around the event: the whole history makes the entry 10 kB.
    cal.add_missing_timezones(first_date=date(year - 1, 1, 1), last_date=date(year + 1, 12, 31))
    return b"".join(tz.to_ical() for tz in cal.walk("VTIMEZONE"))
