"""Owns the organisations of a municipality: create, read and change them."""

from __future__ import annotations

from dataclasses import dataclass

from engagiert.registry import domain
from engagiert.registry.repository import Doc
from engagiert.registry.services.common import NotFound, UseCases
from engagiert.registry.services.municipalities import Municipalities


@dataclass(kw_only=True)
class Organisations(UseCases):
    """Runs the use cases of organisations; the municipality must exist."""

    municipalities: Municipalities

    async def create_organisation(self, ags: str, data: domain.OrganisationCreate) -> Doc:
        """Create an organisation in a known municipality."""
        await self.municipalities.municipality(ags)
        doc = {
            "_id": domain.new_id("o"),
            "municipality": ags,
            **data.model_dump(mode="json"),
            "created_at": self.clock(),
        }
        await self.repo.insert_organisation(doc)
        return doc

    async def organisation(self, ags: str, org_id: str) -> Doc:
        """Return an organisation of ``ags``; NotFound otherwise."""
        doc = await self.repo.get_organisation(ags, org_id)
        if doc is None:
            raise NotFound(org_id)
        return doc

    async def update_organisation(self, ags: str, org_id: str, data: domain.OrganisationUpdate) -> Doc:
        """Change an organisation."""
        changes = data.model_dump(mode="json", exclude_unset=True)
        doc = (
            await self.repo.update_organisation(ags, org_id, changes)
            if changes
            else await self.repo.get_organisation(ags, org_id)
        )
        if doc is None:
            raise NotFound(org_id)
        return doc
