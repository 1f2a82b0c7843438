"""Owns the network's practice examples: staff publish, change and withdraw their municipality's; every member reads."""

from __future__ import annotations

from dataclasses import dataclass

from engagiert.registry import domain
from engagiert.registry.repository import Doc
from engagiert.registry.services.common import NotFound, PreconditionFailed, UseCases
from engagiert.registry.services.municipalities import Municipalities
from engagiert.shared.logging import get_logger

log = get_logger(__name__)

UPDATE_ATTEMPTS = 5  # only a concurrent change of the same example makes an unconditional update try again
PAGE_LIMIT = 100


@dataclass(frozen=True, slots=True)
class PracticePage:
    """A page of practice examples and how many match in all."""

    items: list[Doc]
    total: int


@dataclass(kw_only=True)
class PracticeExamples(UseCases):
    """Runs the use cases of practice examples; the author's municipality must exist."""

    municipalities: Municipalities

    async def publish(self, ags: str, data: domain.PracticeExampleCreate, *, author: str) -> Doc:
        """Publish a practice example of ``ags``, tagged with the kind and name of its municipality profile."""
        municipality = await self.municipalities.municipality(ags)
        now = self.clock()
        doc: Doc = {
            "_id": domain.new_id("px"),
            "municipality": ags,
            "municipality_name": municipality["name"],
            "municipality_kind": municipality.get("kind"),
            **data.model_dump(mode="json"),
            "state": "published",
            "revision": 1,
            "created_by": author,
            "created_at": now,
            "updated_at": now,
        }
        doc["search"] = domain.practice_search_text(doc)
        await self.repo.insert_practice_example(doc)
        log.info("practice_example_published", municipality=ags, example_id=doc["_id"], field=data.field)
        return doc

    async def example(self, example_id: str, *, ags: str | None = None) -> Doc:
        """Return a published practice example (of ``ags`` when given); NotFound when unknown or withdrawn."""
        doc = await self.repo.get_practice_example(example_id, ags=ags)
        if doc is None or doc.get("state") != "published":
            raise NotFound(example_id)
        return doc

    async def change(
        self, ags: str, example_id: str, data: domain.PracticeExampleUpdate, *, if_match: int | None
    ) -> Doc:
        """Change a published example of ``ags``; PreconditionFailed when ``if_match`` is not its revision."""
        changes = data.model_dump(mode="json", exclude_unset=True)
        return await self._write(ags, example_id, changes, if_match=if_match, event="practice_example_changed")

    async def withdraw(self, ags: str, example_id: str, *, if_match: int | None) -> Doc:
        """Withdraw a published example of ``ags``: the network no longer sees it."""
        changes: Doc = {"state": "withdrawn", "withdrawn_at": self.clock()}
        return await self._write(ags, example_id, changes, if_match=if_match, event="practice_example_withdrawn")

    async def _write(self, ags: str, example_id: str, changes: Doc, *, if_match: int | None, event: str) -> Doc:
        for _ in range(UPDATE_ATTEMPTS):
            current = await self.example(example_id, ags=ags)
            revision = int(current["revision"])
            if if_match is not None and if_match != revision:
                raise PreconditionFailed(example_id)
            if not changes:
                return current
            municipality = await self.municipalities.municipality(ags)
            changed = {
                **changes,
                "municipality_name": municipality["name"],
                "municipality_kind": municipality.get("kind"),
                "updated_at": self.clock(),
            }
            changed["search"] = domain.practice_search_text({**current, **changed})
            doc = await self.repo.update_practice_example(ags, example_id, changed, revision=revision)
            if doc is not None:
                log.info(event, municipality=ags, example_id=example_id, revision=revision + 1)
                return doc
            if if_match is not None:
                raise PreconditionFailed(example_id)
        raise PreconditionFailed(example_id)

    async def search(
        self,
        *,
        query: str | None,
        field: str | None,
        kind: str | None,
        municipality: str | None,
        offset: int,
        limit: int,
    ) -> PracticePage:
        """Return the published examples that match every word of ``query`` and the filters, newest change first."""
        words = domain.search_words(query or "")
        docs, total = await self.repo.find_practice_examples(
            words=words, field=field, kind=kind, municipality=municipality, skip=offset, limit=min(limit, PAGE_LIMIT)
        )
        return PracticePage(items=docs, total=total)
