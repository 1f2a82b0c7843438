"""Templates and branding: a municipality's branding of its messages and the preview of a template with it."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from engagiert.notifications import domain
from engagiert.notifications.domain import utcnow
from engagiert.notifications.rendering import Renderer, complete_branding, html_with_inline_images
from engagiert.notifications.repository import Doc, Repository
from engagiert.shared.contracts.letters import LETTERS

# ``printing`` (fpdf2 with fontTools and Pillow: about 24 MiB of a process) is imported by the
# methods that lay out a PDF, so a process that only sends e-mail never loads it. The layout runs
# in a worker thread: a run of a few hundred letters takes seconds of CPU, during which the event
# loop goes on sending mail and consuming (it gets the interpreter between the layout's steps).

BRANDING_CACHE_SECONDS = 10.0
"""How long a process reuses a municipality's branding; another replica's change shows after this."""


@dataclass(kw_only=True)
class Branding:
    """Reads (cached) and stores a municipality's branding and renders template previews with it."""

    repo: Repository
    renderer: Renderer = field(default_factory=Renderer)
    _branding_cache: dict[str, tuple[float, Doc]] = field(default_factory=dict, init=False)

    async def branding_of(self, municipality: str) -> Doc:
        """Return a municipality's branding (the default until it sets one), cached for a few seconds."""
        cached = self._branding_cache.get(municipality)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        branding = await self._load_branding(municipality)
        self._branding_cache[municipality] = (time.monotonic() + BRANDING_CACHE_SECONDS, branding)
        return branding

    async def _load_branding(self, municipality: str) -> Doc:
        profile = await self.repo.get_profile(municipality)
        stored = await self.repo.get_branding(municipality)
        return domain.merge_branding(municipality, profile, stored)

    async def set_branding(self, municipality: str, update: domain.BrandingUpdate) -> Doc:
        """Store staff's branding of a municipality (it wins over the registry's profile) and return the result."""
        fields = update.model_dump(mode="json", exclude_none=True)
        await self.repo.put_branding(municipality, fields, utcnow())
        self._branding_cache.pop(municipality, None)
        return await self.branding_of(municipality)

    async def preview(self, municipality: str, name: str, request: domain.PreviewRequest) -> domain.RenderedMessage:
        """Render template ``name`` with the municipality's branding; parameters not given come from the example."""
        model = LETTERS.get(name)
        example = model.example().to_params() if model else {}
        rendered = self.renderer.render(
            name,
            language=request.language,
            params={**example, **request.params},
            member={"given_name": request.given_name, "family_name": request.family_name},
            branding=await self.branding_of(municipality),
        )
        # A browser shows the inline images (the QR code) only as data URIs.
        return rendered.model_copy(update={"html": html_with_inline_images(rendered)})

    async def letter_preview(self, municipality: str, name: str, request: domain.PreviewRequest) -> bytes:
        """Return template ``name`` as the printed letter (PDF, DIN 5008) to an example address."""
        from engagiert.notifications import printing

        model = LETTERS.get(name)
        example = model.example().to_params() if model else {}
        member = {"given_name": request.given_name, "family_name": request.family_name}
        branding = await self.branding_of(municipality)
        rendered = self.renderer.render_letter(
            name, language=request.language, params={**example, **request.params}, member=member, branding=branding
        )
        params = {**example, **request.params}
        letter = printing.PostalLetter(
            recipient=[f"{request.given_name} {request.family_name}", "Musterstraße 1", "33098 Paderborn"],
            subject=rendered.subject,
            body=rendered.text,
            dated=utcnow().date(),
            language=request.language,
            qr_url=str(params.get("rsvp_url") or params.get("verify_url") or "") or None,
        )
        return await asyncio.to_thread(printing.letters_pdf, [letter], branding=complete_branding(branding))

    async def certificate(self, municipality: str, kind: str, request: domain.CertificateRequest) -> bytes:
        """Return a certificate (``engagementnachweis`` or ``urkunde``) with the municipality's branding (PDF)."""
        from engagiert.notifications import printing

        certificate = printing.Certificate(
            kind=kind,
            **request.model_dump(exclude={"dated"}),
            dated=request.dated or utcnow().date(),
        )
        branding = complete_branding(await self.branding_of(municipality))
        return await asyncio.to_thread(printing.certificate_pdf, certificate, branding=branding)

    async def letter_run_pdf(self, municipality: str, run: str) -> bytes | None:
        """Return one PDF with every printed letter of a sender run (for staff to print); None if it has none."""
        from engagiert.notifications import printing

        contents = await self.repo.letters_of_run(municipality, run)
        if not contents:
            return None
        letters = [
            printing.PostalLetter(
                recipient=c["recipient"],
                subject=c["subject"],
                body=c["text"],
                dated=utcnow().date(),
                language=c.get("language") or "de",
                qr_url=c.get("qr_url"),
            )
            for c in contents
        ]
        branding = complete_branding(await self.branding_of(municipality))
        return await asyncio.to_thread(printing.letters_pdf, letters, branding=branding)
