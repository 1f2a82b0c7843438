"""Wires the registry service: broker, HTTP app, store, lifespan; nothing else."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from pymongo.asynchronous.database import AsyncDatabase

from engagiert.registry import domain
from engagiert.registry.api import ROUTERS
from engagiert.registry.api.import_export import MAX_IMPORT_BYTES
from engagiert.registry.config import RegistrySettings
from engagiert.registry.handlers import confirmations_handler, inbound_handler, systems_admit
from engagiert.registry.purge import InboundPurge
from engagiert.registry.repository import OUTBOX_COLLECTIONS, Repository
from engagiert.registry.services import RegistryService, utc_now
from engagiert.shared import topics
from engagiert.shared.contracts import (
    EngagementEnded,
    EngagementStarted,
    HoursRecorded,
    MemberConsentChanged,
    MemberErased,
    MemberRegistered,
    MemberStatusChanged,
    MemberUpdated,
    MunicipalityProfileChanged,
)
from engagiert.shared.runtime import ServiceRuntime


def create_app(settings: RegistrySettings | None = None) -> FastAPI:
    """Return the registry service's app, ready for uvicorn."""
    settings = settings or RegistrySettings()
    runtime = ServiceRuntime(settings, title="engagiert registry", description="The registry service of engagiert.")

    async def bind_store(db: AsyncDatabase[dict[str, Any]]) -> None:
        repo = Repository(db)
        await repo.ensure_indexes()
        runtime.app.state.registry = RegistryService(
            repo,
            source=settings.source,
            notify=runtime.relay.notify,
            erasure_salt=settings.erasure_salt.get_secret_value().encode(),
            figures_cache_seconds=settings.figures_cache_seconds,
        )

    runtime.app.state.member_keys_token = settings.member_keys_token.get_secret_value()
    runtime.on_startup(bind_store)
    for name in OUTBOX_COLLECTIONS:
        runtime.outbox(name)

    def registry() -> RegistryService:
        service: RegistryService = runtime.app.state.registry  # bound once the store is
        return service

    runtime.subscribe(
        settings.inbound_topic,
        inbound_handler(registry),
        contract_topic=topics.REGISTRY_INBOUND,
        max_records=settings.inbound_max_records,
    )
    runtime.subscribe(
        "registry.inbound.<system>.v1",
        inbound_handler(registry),
        group_id=f"{settings.group_id}-systems",
        pattern=settings.systems_pattern,
        admit=systems_admit(registry),
        contract_topic=topics.REGISTRY_INBOUND,
        max_records=settings.inbound_max_records,
    )
    runtime.subscribe(
        settings.confirmations_topic,
        confirmations_handler(registry),
        group_id=f"{settings.group_id}-confirmations",
        contract_topic=topics.REGISTRY_ERASURE_CONFIRMATIONS,
    )
    salt = settings.erasure_salt.get_secret_value().encode()
    purge = InboundPurge(
        settings=settings,
        repo=lambda: runtime.app.state.registry.repo,
        marks=lambda ags, keys: domain.erased_marks(ags, keys, salt=salt),
        inbound=settings.inbound_topic,
        clock=utc_now,
    )
    runtime.background(purge.loop)
    runtime.publishes(
        topics.REGISTRY_MEMBERS,
        [
            MemberRegistered,
            MemberUpdated,
            MemberStatusChanged,
            MemberConsentChanged,
            MemberErased,
            MunicipalityProfileChanged,
        ],
    )
    runtime.publishes(topics.REGISTRY_ENGAGEMENT, [HoursRecorded, EngagementStarted, EngagementEnded])
    for router in ROUTERS:
        runtime.app.include_router(router)
    # The CSV import takes files up to MAX_IMPORT_BYTES (plus the multipart framing); the rest 1 MiB.
    runtime.edge("/v1/municipalities/{ags}/members/import", max_body_bytes=MAX_IMPORT_BYTES + 64 * 1024)
    return runtime.app


app = create_app()
