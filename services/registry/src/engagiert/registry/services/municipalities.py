"""Owns the municipalities (tenants): create, read and change them; each change publishes the profile."""

from __future__ import annotations

from dataclasses import dataclass

from engagiert.registry import domain
from engagiert.registry.repository import Doc
from engagiert.registry.services.common import AlreadyExists, NotFound, UseCases
from engagiert.shared.contracts import MunicipalityProfileChanged
from engagiert.shared.envelope import OutgoingRecord

UPDATE_ATTEMPTS = 5  # only a concurrent change of the same municipality makes an update try again


@dataclass(kw_only=True)
class Municipalities(UseCases):
    """Runs the use cases of municipalities."""

    async def create_municipality(self, data: domain.MunicipalityCreate) -> Doc:
        """Create a municipality (tenant) and publish its profile; AlreadyExists when its key is taken."""
        doc = {
            "_id": data.ags,
            **data.model_dump(mode="json", exclude={"ags"}),
            "revision": 1,
            "created_at": self.clock(),
        }
        if not await self.repo.insert_municipality(doc, [self._profile_record(doc)]):
            raise AlreadyExists(data.ags)
        self.notify()
        return doc

    async def municipality(self, ags: str) -> Doc:
        """Return a municipality; NotFound when unknown."""
        doc = await self.repo.get_municipality(ags)
        if doc is None:
            raise NotFound(ags)
        return doc

    async def update_municipality(self, ags: str, data: domain.MunicipalityUpdate) -> Doc:
        """Change a municipality and publish its new profile (guarded by its revision)."""
        changes = data.model_dump(mode="json", exclude_unset=True)
        for _ in range(UPDATE_ATTEMPTS):
            current = await self.municipality(ags)
            if not changes:
                return current
            revision = int(current.get("revision") or 0)
            changed = {**current, **changes, "revision": revision + 1}
            doc = await self.repo.update_municipality(
                ags, changes, revision=revision, records=[self._profile_record(changed)]
            )
            if doc is not None:
                self.notify()
                return doc
        raise AlreadyExists(f"{ags} changed meanwhile; try again")

    def _profile_record(self, doc: Doc) -> OutgoingRecord:
        profile = domain.municipality_profile(doc)
        return self._record(MunicipalityProfileChanged(municipality=profile.ags, profile=profile))
