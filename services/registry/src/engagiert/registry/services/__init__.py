"""Holds the registry's use cases, one module per aggregate, and the container that wires them to one store."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from engagiert.registry.repository import Repository
from engagiert.registry.services.common import AlreadyExists, DuplicateMember, InvalidChange, NotFound, utc_now
from engagiert.registry.services.erasure import Erasure
from engagiert.registry.services.hours import Hours
from engagiert.registry.services.import_export import CSV_COLUMNS, ImportExport, ImportReport, RowError
from engagiert.registry.services.inbound import Inbound
from engagiert.registry.services.members import Members
from engagiert.registry.services.municipalities import Municipalities
from engagiert.registry.services.organisations import Organisations


class RegistryService:
    """Holds the groups of use cases, wired together; handlers and routes call these and nothing below."""

    def __init__(
        self,
        repo: Repository,
        *,
        source: str,
        notify: Callable[[], None] = lambda: None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.repo = repo
        self.municipalities = Municipalities(repo=repo, source=source, notify=notify, clock=clock)
        self.organisations = Organisations(
            repo=repo, source=source, notify=notify, clock=clock, municipalities=self.municipalities
        )
        self.members = Members(repo=repo, source=source, notify=notify, clock=clock, municipalities=self.municipalities)
        self.hours = Hours(repo=repo, source=source, notify=notify, clock=clock)
        self.import_export = ImportExport(
            repo=repo,
            source=source,
            notify=notify,
            clock=clock,
            municipalities=self.municipalities,
            members=self.members,
        )
        self.erasure = Erasure(repo=repo, source=source, notify=notify, clock=clock)
        self.inbound = Inbound(
            repo=repo,
            source=source,
            notify=notify,
            clock=clock,
            members=self.members,
            hours=self.hours,
            erasure=self.erasure,
        )


__all__ = [
    "CSV_COLUMNS",
    "AlreadyExists",
    "DuplicateMember",
    "Erasure",
    "Hours",
    "ImportExport",
    "ImportReport",
    "Inbound",
    "InvalidChange",
    "Members",
    "Municipalities",
    "NotFound",
    "Organisations",
    "RegistryService",
    "RowError",
]
