"""Holds the registry's use cases, one module per aggregate, and the container that wires them to one store."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from engagiert.registry.repository import Repository
from engagiert.registry.services.common import (
    LOCAL_ERASURE_SALT,
    AlreadyExists,
    DuplicateMember,
    InvalidChange,
    NotFound,
    PreconditionFailed,
    PreviouslyErased,
    utc_now,
)
from engagiert.registry.services.erasure import Erasure
from engagiert.registry.services.figures import Figures
from engagiert.registry.services.hours import Hours
from engagiert.registry.services.import_export import CSV_COLUMNS, ImportExport, ImportReport, RowError
from engagiert.registry.services.inbound import Inbound
from engagiert.registry.services.members import Members
from engagiert.registry.services.municipalities import Municipalities
from engagiert.registry.services.organisations import Organisations
from engagiert.registry.services.practice_examples import PracticeExamples, PracticePage
from engagiert.registry.services.systems import Systems
from engagiert.shared.figures import NetworkCache


class RegistryService:
    """Holds the groups of use cases, wired together; handlers and routes call these and nothing below."""

    def __init__(
        self,
        repo: Repository,
        *,
        source: str,
        notify: Callable[[], None] = lambda: None,
        clock: Callable[[], datetime] = utc_now,
        erasure_salt: bytes = LOCAL_ERASURE_SALT,
        figures_cache_seconds: float = 0,
    ) -> None:
        self.repo = repo
        base: dict[str, Any] = {
            "repo": repo,
            "source": source,
            "notify": notify,
            "clock": clock,
            "erasure_salt": erasure_salt,
        }
        self.municipalities = Municipalities(**base)
        self.organisations = Organisations(**base, municipalities=self.municipalities)
        self.members = Members(**base, municipalities=self.municipalities)
        self.hours = Hours(**base)
        self.import_export = ImportExport(**base, municipalities=self.municipalities, members=self.members)
        self.erasure = Erasure(**base)
        self.practice_examples = PracticeExamples(**base, municipalities=self.municipalities)
        self.figures = Figures(**base, network_cache=NetworkCache(figures_cache_seconds))
        self.inbound = Inbound(**base, members=self.members, hours=self.hours, erasure=self.erasure)
        self.systems = Systems(**base)


__all__ = [
    "CSV_COLUMNS",
    "AlreadyExists",
    "DuplicateMember",
    "Erasure",
    "Figures",
    "Hours",
    "ImportExport",
    "ImportReport",
    "Inbound",
    "InvalidChange",
    "Members",
    "Municipalities",
    "NotFound",
    "Organisations",
    "PracticeExamples",
    "PracticePage",
    "PreconditionFailed",
    "PreviouslyErased",
    "RegistryService",
    "RowError",
    "Systems",
]
