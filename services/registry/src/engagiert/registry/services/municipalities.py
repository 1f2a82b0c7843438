"""Owns the municipalities (tenants): create, read and change them."""

from __future__ import annotations

from dataclasses import dataclass

from engagiert.registry import domain
from engagiert.registry.repository import Doc
from engagiert.registry.services.common import AlreadyExists, NotFound, UseCases


@dataclass(kw_only=True)
class Municipalities(UseCases):
    """Runs the use cases of municipalities."""

    async def create_municipality(self, data: domain.MunicipalityCreate) -> Doc:
        """Create a municipality (tenant); AlreadyExists when its key is taken."""
        doc = {"_id": data.ags, **data.model_dump(mode="json", exclude={"ags"}), "created_at": self.clock()}
        if not await self.repo.insert_municipality(doc):
            raise AlreadyExists(data.ags)
        return doc

    async def municipality(self, ags: str) -> Doc:
        """Return a municipality; NotFound when unknown."""
        doc = await self.repo.get_municipality(ags)
        if doc is None:
            raise NotFound(ags)
        return doc

    async def update_municipality(self, ags: str, data: domain.MunicipalityUpdate) -> Doc:
        """Change a municipality."""
        changes = data.model_dump(mode="json", exclude_unset=True)
        doc = await self.repo.update_municipality(ags, changes) if changes else await self.repo.get_municipality(ags)
        if doc is None:
            raise NotFound(ags)
        return doc
