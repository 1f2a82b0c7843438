"""Defines the base of every event's data model and the registry from CloudEvent type to model."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

AGS_PATTERN = r"^[0-9]{8}$"
TYPE_PATTERN = re.compile(r"^de\.engagiert\.[a-z][a-z-]*(\.[a-z][a-z-]*)+\.v[0-9]+$")

Ags = Annotated[
    str,
    StringConstraints(pattern=AGS_PATTERN),
    Field(description="Amtlicher Gemeindeschlüssel, 8 digits (Paderborn: 05774032)"),
]
"""The 8-digit Amtlicher Gemeindeschlüssel that identifies a municipality (tenant)."""

EntityId = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]
"""An identifier of an entity: letters, digits and ``_.:-``."""

Language = Literal["de", "en"]
MemberStatus = Literal["active", "paused", "left"]
Channel = Literal["email", "post", "phone"]
Field_ = Literal[
    "Sport",
    "Kultur",
    "Soziales",
    "Umwelt",
    "Feuerwehr/Katastrophenschutz",
    "Kirche",
    "Bildung",
    "Jugendarbeit",
    "Gesundheit",
    "Sonstiges",
]
"""A field of engagement (Engagementfeld)."""


def _positive_hours(value: float) -> float:
    if value != value or value <= 0 or value > 24 * 366:  # NaN check first
        raise ValueError("hours must be a positive number of at most one year's hours")
    return round(value, 2)


Hours = Annotated[float, AfterValidator(_positive_hours)]

_TYPES: dict[str, type[EventData]] = {}


class EventData(BaseModel):
    """Base of every event's ``data``: one subclass per CloudEvent ``type``."""

    model_config = ConfigDict(extra="ignore", frozen=True, str_strip_whitespace=True)

    TYPE: ClassVar[str]
    TOPIC: ClassVar[str]
    KIND: ClassVar[Literal["fact", "command"]] = "fact"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        event_type = cls.__dict__.get("TYPE")
        if event_type is None:
            return
        if not TYPE_PATTERN.match(event_type):
            raise ValueError(f"{cls.__name__}.TYPE {event_type!r} breaks the naming rule")
        if event_type in _TYPES:
            raise ValueError(f"{event_type} is registered twice")
        _TYPES[event_type] = cls

    def partition_key(self) -> str:
        """Return the Kafka key: the id of the entity this event is about."""
        for name in ("event_id", "member_id", "honour_id", "request_id"):
            value = getattr(self, name, None)
            if value:
                return str(value)
        raise NotImplementedError(f"{type(self).__name__} has no entity id")


class Command(EventData):
    """Base of a command sent to a service by another system: unknown fields are refused."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)
    KIND: ClassVar[Literal["fact", "command"]] = "command"


def event_types() -> dict[str, type[EventData]]:
    """Return every registered CloudEvent type with its data model."""
    from engagiert.shared import contracts  # noqa: F401  (registers all modules)

    return dict(_TYPES)


def model_for(event_type: str) -> type[EventData] | None:
    """Return the data model registered for ``event_type``, or None when it is unknown."""
    return event_types().get(event_type)


__all__ = [
    "AGS_PATTERN",
    "Ags",
    "Channel",
    "Command",
    "EntityId",
    "EventData",
    "Field_",
    "Hours",
    "Language",
    "MemberStatus",
    "date",
    "datetime",
    "event_types",
    "model_for",
]
