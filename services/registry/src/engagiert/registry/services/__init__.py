"""Holds the registry's use cases (being split into one module per aggregate)."""

from engagiert.registry.services.members import (
    CSV_COLUMNS,
    AlreadyExists,
    DuplicateMember,
    ImportReport,
    InvalidChange,
    NotFound,
    RegistryService,
    RowError,
)

__all__ = [
    "CSV_COLUMNS",
    "AlreadyExists",
    "DuplicateMember",
    "ImportReport",
    "InvalidChange",
    "NotFound",
    "RegistryService",
    "RowError",
]
