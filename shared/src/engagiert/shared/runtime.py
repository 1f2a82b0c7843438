"""Wires one service: settings, logging, Kafka broker, MongoDB, outbox relay, consumers and HTTP.

A service's ``main.py`` creates one :class:`ServiceRuntime`, adds its subscriptions, outbox
collections, routers and startup hooks, and exposes ``runtime.app`` to uvicorn. The runtime
serves ``/healthz``, ``/readyz``, ``/metrics``, ``/asyncapi`` and ``/asyncapi.json`` and starts
and stops everything in the right order (graceful shutdown: stop fetching, finish the batch in
hand, commit, publish what the outbox holds, close).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from typing import Any

from fastapi import APIRouter, FastAPI, Response
from fastapi.responses import HTMLResponse, JSONResponse
from faststream.kafka import KafkaBroker
from faststream.specification import AsyncAPI
from faststream.specification.asyncapi.site import get_asyncapi_html
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from engagiert.shared.auth import TokenVerifier
from engagiert.shared.contracts.base import EventData
from engagiert.shared.edges import (
    BodyLimitMiddleware,
    CrashGuardMiddleware,
    InputGuardMiddleware,
    RouteRule,
    RouteRules,
    SecurityHeadersMiddleware,
)
from engagiert.shared.logging import configure_logging, get_logger, register_secret_route, route_library_logs
from engagiert.shared.messaging.consumer import Admit, BatchHandler, Subscription
from engagiert.shared.messaging.outbox import OutboxRelay
from engagiert.shared.messaging.publisher import RecordPublisher
from engagiert.shared.mongo import create_client
from engagiert.shared.openapi import document_problems
from engagiert.shared.problems import install_problem_handlers
from engagiert.shared.ratelimit import RateLimitMiddleware, parse_networks
from engagiert.shared.settings import ServiceSettings

log = get_logger(__name__)

GC_THRESHOLDS = (50_000, 20, 100)
"""The garbage collector's thresholds while a service runs (CPython's defaults: 700, 10, 10)."""

Hook = Callable[[AsyncDatabase[dict[str, Any]]], Awaitable[None]]


class ServiceRuntime:
    """Owns the moving parts of one service process and its HTTP app."""

    def __init__(self, settings: ServiceSettings, *, title: str, description: str, version: str = "0.1.0") -> None:
        configure_logging(level=settings.log_level, service=settings.service_name)
        self.settings = settings
        self.broker = KafkaBroker(
            settings.kafka_bootstrap_servers,
            client_id=f"engagiert-{settings.service_name}",
            allow_auto_create_topics=False,
            acks="all",
            enable_idempotence=True,
            linger_ms=5,
            metadata_max_age_ms=settings.kafka_metadata_max_age_ms,
            graceful_timeout=settings.graceful_timeout_seconds,
            security=settings.kafka_security(),
            description=description,
            log_level=20,
            logger=logging.getLogger("faststream.engagiert"),
        )
        self.publisher = RecordPublisher(self.broker)
        self.relay = OutboxRelay(collections=[], publisher=self.publisher, poll_seconds=settings.outbox_poll_seconds)
        self.subscriptions: list[Subscription] = []
        self._outbox_collections: list[str] = []
        self._startup: list[Hook] = []
        self._background: list[Callable[[], Coroutine[Any, Any, None]]] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._client: AsyncMongoClient[dict[str, Any]] | None = None
        self._db: AsyncDatabase[dict[str, Any]] | None = None
        self.asyncapi = AsyncAPI(self.broker, title=title, version=version, description=description)
        self.app = FastAPI(
            title=title,
            description=description,
            version=version,
            lifespan=self._lifespan,
            docs_url="/docs",
        )
        self.app.state.runtime = self
        self.app.state.settings = settings
        self.app.state.token_verifier = TokenVerifier(settings)
        install_problem_handlers(self.app)
        document_problems(self.app)
        self.edge_rules = RouteRules(default_max_body_bytes=settings.max_body_bytes)
        # Added innermost first: the headers see every answer, the size limit runs before
        # anything reads the body, the rate limit before parsing and authentication.
        self.app.add_middleware(CrashGuardMiddleware)
        self.app.add_middleware(InputGuardMiddleware)
        self.app.add_middleware(
            RateLimitMiddleware, rules=self.edge_rules, trusted_proxies=parse_networks(settings.trusted_proxies)
        )
        self.app.add_middleware(BodyLimitMiddleware, rules=self.edge_rules)
        self.app.add_middleware(SecurityHeadersMiddleware, rules=self.edge_rules)
        self.app.include_router(self._ops_router())

    # -- what a service adds -------------------------------------------------------------------

    def subscribe(
        self,
        topic: str,
        handler: BatchHandler,
        *,
        group_id: str | None = None,
        pattern: str | None = None,
        admit: Admit | None = None,
        contract_topic: str | None = None,
        max_records: int | None = None,
    ) -> Subscription:
        """Consume ``topic`` (or every topic matching ``pattern``) with ``handler`` (idempotent by event id).

        ``admit`` checks each event against the authority of whoever wrote its topic; refused
        events go to the dead-letter topic as ``not-authorised``. ``max_records`` (default: the
        service's ``consumer_max_records``) is the most events in one batch.
        """
        sub = Subscription(
            topic=topic,
            handler=handler,
            pattern=pattern,
            admit=admit,
            contract_topic=contract_topic,
            group_id=group_id or self.settings.group_id,
            max_records=max_records or self.settings.consumer_max_records,
            max_attempts=self.settings.consumer_max_attempts,
            backoff_seconds=self.settings.consumer_retry_backoff_seconds,
        )
        sub.register(self.broker)
        self.subscriptions.append(sub)
        return sub

    def edge(
        self,
        template: str,
        *,
        methods: Sequence[str] | None = None,
        max_body_bytes: int | None = None,
        public: bool = False,
        rate: str | None = None,
        token: bool = False,
    ) -> None:
        """Set the edge rules of the route ``template``.

        Args:
            template: the route's path template (``/rsvp/{token}``).
            methods: the methods the rule covers (default: all).
            max_body_bytes: the route's own body limit (default: ``MAX_BODY_BYTES``).
            public: the route needs no token: rate-limited per client (``PUBLIC_RATE_LIMIT``).
            rate: the route's own rate (``"10/minute"``), public or not.
            token: the path carries a secret: masked in logs, answered with ``Cache-Control: no-store``.
        """
        self.edge_rules.add(
            RouteRule(
                template=template,
                methods=frozenset(m.upper() for m in methods) if methods else None,
                max_body_bytes=max_body_bytes,
                rate=rate or (self.settings.public_rate_limit if public else None),
                token=token,
            )
        )
        if token:
            register_secret_route(template)

    def publishes(self, topic: str, models: Sequence[type[EventData]]) -> None:
        """Document in AsyncAPI that this service publishes ``models`` on ``topic``."""
        types = ", ".join(m.TYPE for m in models)
        self.broker.publisher(
            topic,
            title=f"{self.settings.service_name}:{topic}",
            description=f"CloudEvents (structured mode) of types: {types}",
        )

    def outbox(self, collection: str) -> None:
        """Relay the outbox of ``collection`` (in this service's database)."""
        self._outbox_collections.append(collection)

    def on_startup(self, hook: Hook) -> Hook:
        """Run ``hook(db)`` at start, before consumers start (create indexes, load templates)."""
        self._startup.append(hook)
        return hook

    def background(self, loop: Callable[[], Coroutine[Any, Any, None]]) -> Callable[[], Coroutine[Any, Any, None]]:
        """Run ``loop()`` as a background task while the service runs (schedulers)."""
        self._background.append(loop)
        return loop

    @property
    def db(self) -> AsyncDatabase[dict[str, Any]]:
        """Return this service's database (available once the service started)."""
        if self._db is None:
            raise RuntimeError("the service has not started")
        return self._db

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect the store, run startup hooks, start the relay, then the consumers and background loops."""
        self._client = create_client(self.settings.mongodb_url, app_name=f"engagiert-{self.settings.service_name}")
        self._db = self._client[self.settings.database_name]
        for hook in self._startup:
            await hook(self._db)
        for name in self._outbox_collections:
            self.relay.add_collection(self._db[name])
        await self.broker.connect()
        if self._outbox_collections:
            await self.relay.start()
        await self.broker.start()
        route_library_logs()  # the broker's and the server's loggers exist now
        # Full garbage collections stop every thread, the event loop too, for as long as they walk
        # the heap: with a 20 MB CSV's rows in memory that was up to 5 s without an answer from
        # /healthz. What exists after start is frozen out of the walks, and young collections
        # come every 50,000 allocations instead of 700 (worst loop wait seen: 1.8 s -> 0.1 s).
        gc.freeze()
        gc.set_threshold(GC_THRESHOLDS[0], GC_THRESHOLDS[1], GC_THRESHOLDS[2])
        for loop in self._background:
            self._tasks.append(asyncio.create_task(loop(), name=getattr(loop, "__name__", "background")))
        log.info("service_started", subscriptions=[s.topic for s in self.subscriptions])

    async def stop(self) -> None:
        """Stop in order: no new batches, finish or abandon the one in hand, publish, close."""
        for sub in self.subscriptions:
            sub.stop()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        # Consumers first (each finishes the batch in hand within the graceful timeout), then the
        # relay publishes what those batches wrote, and only then does the producer close.
        for subscriber in self.broker.subscribers:
            with contextlib.suppress(Exception):
                await subscriber.stop()
        await self.relay.stop()
        with contextlib.suppress(Exception):
            await self.broker.stop()
        if self._client is not None:
            await self._client.close()
            self._client = None
            self._db = None
        log.info("service_stopped")

    @contextlib.asynccontextmanager
    async def _lifespan(self, _app: FastAPI) -> AsyncIterator[None]:
        await self.start()
        try:
            yield
        finally:
            await self.stop()

    # -- operations endpoints ------------------------------------------------------------------

    async def readiness(self) -> dict[str, Any]:
        """Return whether Kafka and the store answer and the consumers and relay run."""
        checks: dict[str, Any] = {}
        try:
            checks["kafka"] = bool(await self.broker.ping(timeout=2.0))
        except Exception:
            checks["kafka"] = False
        try:
            if self._client is None:
                raise RuntimeError
            await asyncio.wait_for(self._client.admin.command("ping"), timeout=2.0)
            checks["store"] = True
        except Exception:
            checks["store"] = False
        checks["consumers"] = all(s.running for s in self.subscriptions) and all(
            getattr(sub, "running", True) for sub in self.broker.subscribers
        )
        stalled = [s.topic for s in self.subscriptions if s.stalled(self.settings.consumer_stall_seconds)]
        checks["consumers_progress"] = not stalled
        if stalled:
            log.warning("consumers_stalled", topics=stalled, stall_seconds=self.settings.consumer_stall_seconds)
        checks["outbox_relay"] = self.relay.running or not self._outbox_collections
        checks["outbox_progress"] = not self.relay.stalled(self.settings.consumer_stall_seconds)
        if not checks["outbox_progress"]:
            log.warning("outbox_relay_stalled", stall_seconds=self.settings.consumer_stall_seconds)
        return checks

    def _ops_router(self) -> APIRouter:
        router = APIRouter(tags=["operations"])

        @router.get("/healthz", summary="Liveness: the process serves requests")
        async def healthz() -> dict[str, str]:
            return {"status": "ok"}

        @router.get(
            "/readyz",
            summary="Readiness: Kafka and the store answer, consumers run and make progress",
            responses={503: {"description": "Not ready: the checks say which part"}},
        )
        async def readyz() -> JSONResponse:
            checks = await self.readiness()
            ok = all(checks.values())
            return JSONResponse(
                {"status": "ready" if ok else "not ready", "checks": checks},
                status_code=200 if ok else 503,
            )

        @router.get("/metrics", summary="Prometheus metrics", include_in_schema=False)
        async def metrics() -> Response:
            return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

        @router.get("/asyncapi.json", summary="AsyncAPI document of this service's topics")
        async def asyncapi_json() -> Response:
            return Response(self.asyncapi.to_specification().to_json(), media_type="application/json")

        @router.get("/asyncapi", summary="AsyncAPI document, rendered", include_in_schema=False)
        async def asyncapi_html() -> HTMLResponse:
            return HTMLResponse(get_asyncapi_html(self.asyncapi.to_specification()))

        return router
