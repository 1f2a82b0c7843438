"""Typed HTTP clients of the three services; every call carries the signed-in user's access token.

The console owns no business data: what a page shows comes from these calls, and what a form
changes goes through them. A service's problem+json answer becomes a :class:`ServiceError`
(``NotFound`` for 404), which the pages show in German next to the field it concerns.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any, Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field

from engagiert.shared.contracts.base import Field_, MemberStatus
from engagiert.shared.contracts.members import MemberSnapshot

ServiceName = Literal["registry", "events", "notifications"]


class ServiceError(Exception):
    """A service refused a call: its status and problem+json document."""

    def __init__(self, service: ServiceName, status: int, problem: dict[str, Any]) -> None:
        super().__init__(f"{service} answered {status}: {problem.get('title')}")
        self.service = service
        self.status = status
        self.problem = problem

    @property
    def field_errors(self) -> list[dict[str, Any]]:
        """Return the validation errors (``loc``, ``msg``, ``type``) of a 422, if any."""
        errors = self.problem.get("errors")
        return errors if isinstance(errors, list) else []


class NotFound(ServiceError):
    """The service answered 404: unknown, or outside the caller's municipalities (the same answer)."""


class Unauthorized(ServiceError):
    """The service refused the token (expired or revoked): the user must sign in again."""


class Forbidden(ServiceError):
    """The service refused the caller's role (a reader who tries to write)."""


class Unavailable(Exception):
    """The service did not answer, or answered with a server error."""

    def __init__(self, service: ServiceName) -> None:
        super().__init__(f"{service} is unavailable")
        self.service = service


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore")


# -- registry ---------------------------------------------------------------------------------------


class Municipality(_Model):
    """A municipality (tenant)."""

    id: str
    name: str
    kind: str | None = None
    contact_point_name: str | None = None
    contact_point_email: str | None = None


class Organisation(_Model):
    """An organisation of a municipality."""

    id: str
    name: str
    kind: str = "Verein"
    fields: list[Field_] = Field(default_factory=list)


class Span(_Model):
    """A period of engagement or a break between periods."""

    start: date
    end: date


class Member(MemberSnapshot):
    """A member as the registry shows it, with derived figures, periods and breaks."""

    engagement_periods: list[Span] = Field(default_factory=list)
    engagement_breaks: list[Span] = Field(default_factory=list)

    @property
    def name(self) -> str:
        """Return the name as staff read it."""
        return f"{self.given_name} {self.family_name}"


class MemberPage(_Model):
    """A page of members and the cursor of the next page."""

    items: list[Member]
    next_cursor: str | None = None


class RowError(_Model):
    """The problems of one CSV row."""

    line: int
    errors: list[str]


class ImportReport(_Model):
    """What an import did or would do."""

    dry_run: bool
    rows: int
    created: int = 0
    skipped_existing: int = 0
    errors: list[RowError] = Field(default_factory=list)


class ErasureStatus(_Model):
    """Which services confirmed a member's erasure."""

    member_id: str
    erased_at: datetime | None = None
    confirmations: dict[str, datetime | None] = Field(default_factory=dict)
    complete: bool = False


class PracticeContact(_Model):
    """Who at the contact point answers questions about a practice example."""

    name: str
    email: str
    phone: str | None = None


class PracticeExample(_Model):
    """A practice example of the network, with the author's municipality, its kind and revision."""

    id: str
    municipality: str
    municipality_name: str | None = None
    municipality_kind: str | None = None
    title: str
    field: str
    what_was_done: str
    what_it_took: str
    what_worked: str
    contact: PracticeContact
    revision: int = 1
    created_at: datetime | None = None
    updated_at: datetime | None = None


class PracticePage(_Model):
    """A page of practice examples and how many match in all."""

    items: list[PracticeExample]
    total: int = 0
    offset: int = 0
    limit: int = 20


# -- figures (registry and events, the same shape) --------------------------------------------------

FigureValue = float | dict[str, float | None] | None


class Figures(_Model):
    """A municipality's figures of one period, as one service computes them."""

    municipality: str
    period: str
    period_start: date | None = None
    period_end: date | None = None
    source: str
    figures: dict[str, FigureValue] = Field(default_factory=dict)
    keys: dict[str, dict[str, str]] = Field(default_factory=dict)


class NetworkRow(_Model):
    """One municipality's anonymised figures in the network's answer (``None`` = suppressed)."""

    label: str
    ags: str | None = None
    named: bool = True
    kind: str | None = None
    size_class: str | None = None
    figures: dict[str, FigureValue] = Field(default_factory=dict)


class Spread(_Model):
    """The network's median and quartiles of one figure over ``n`` municipalities."""

    n: int = 0
    median: float | None = None
    q1: float | None = None
    q3: float | None = None


class NetworkFigures(_Model):
    """Every municipality's figures of a period, anonymised, with the network's and each kind's spread."""

    period: str
    source: str
    k: int = 5
    municipalities: list[NetworkRow] = Field(default_factory=list)
    network: dict[str, Any] = Field(default_factory=dict)
    same_kind: dict[str, dict[str, Any]] = Field(default_factory=dict)
    keys: dict[str, dict[str, str]] = Field(default_factory=dict)
    """The labels of the breakdowns' keys (``fields``, ``age_bands``, ``size_classes``: key -> German label)."""


# -- events -----------------------------------------------------------------------------------------


class RecognitionEvent(_Model):
    """A recognition event; ``invitations`` (per status) and ``seats_taken`` only on a single read."""

    id: str
    kind: str
    title: str
    starts_at: datetime
    venue: str
    capacity: int
    guests_per_invitee: int = 0
    rsvp_deadline: datetime
    status: str
    invitations: dict[str, int] = Field(default_factory=dict)
    seats_taken: int = 0


class Invitation(_Model):
    """An invitation of a member to an event."""

    id: str
    event_id: str
    member_id: str
    status: str
    guests: int = 0
    seq: int = 0
    waitlist_position: int | None = None
    attended: bool | None = None
    issued_at: datetime | None = None
    checked_in_at: datetime | None = None


class PreviewMember(_Model):
    """A member who would be invited (names from the events service's read model)."""

    member_id: str
    given_name: str | None = None
    family_name: str | None = None


class InvitationPreview(_Model):
    """How many members match criteria, how many would get an offer, how many would wait."""

    matching: int
    already_invited: int = 0
    would_invite: int = 0
    would_waitlist: int = 0
    sample: list[PreviewMember] = Field(default_factory=list)


class IssueResult(_Model):
    """What issuing invitations did."""

    matching: int
    issued: int = 0
    invited: int = 0
    waitlisted: int = 0
    already_invited: int = 0


class Honour(_Model):
    """An honour: proposed, granted, rejected or expired."""

    id: str
    member_id: str
    kind: str
    status: str
    reason: str | None = None
    card_number: str | None = None
    valid_until: date | None = None
    proposed_at: datetime | None = None
    valid_from: date | None = None
    granted_at: datetime | None = None
    rejection_reason: str | None = None
    rejected_at: datetime | None = None
    renewal_of: str | None = None
    renews_from: date | None = None
    renewal_proposed_at: datetime | None = None
    expired_on: date | None = None


class HonourRules(_Model):
    """A municipality's honour rules (the state defaults where it set none)."""

    min_duration_years: float = 0
    min_age: int = 16
    validity_years: int = 3
    juleica_shortcut: bool = True
    engagementnachweis_min_hours: float = 80
    hours_per_year_override: float | None = None


class StateThreshold(_Model):
    """A dated state rule of the Ehrenamtskarte NRW (from ``valid_from`` on, until before ``valid_until``)."""

    valid_from: date
    valid_until: date | None = None
    hours_per_week: float
    hours_per_year: float

    @property
    def last_day(self) -> date | None:
        """Return the last day the rule applies (None: open-ended)."""
        return self.valid_until - timedelta(days=1) if self.valid_until else None

    def applies_on(self, day: date) -> bool:
        """Return True when the rule is in force on ``day``."""
        return self.valid_from <= day and (self.valid_until is None or day < self.valid_until)


class HonourRuleDefaults(_Model):
    """The rules every municipality starts from, as the events service applies them."""

    defaults: HonourRules
    state_thresholds: list[StateThreshold]


# -- notifications ----------------------------------------------------------------------------------


class Delivery(_Model):
    """One delivery of the log (no address, no content)."""

    delivery_id: str
    member_id: str
    template: str
    channel: str
    status: str
    reason: str | None = None
    attempts: int = 0
    created_at: datetime
    sent_at: datetime | None = None
    request_id: str | None = None
    answer: str | None = None
    not_before: datetime | None = None
    updated_at: datetime | None = None
    resend_of: str | None = None
    content_erased: bool = False


class Branding(_Model):
    """A municipality's branding of its messages."""

    municipality: str
    name: str
    signature: str = ""
    logo_url: str | None = None


class RenderedMessage(_Model):
    """A template rendered for a preview: subject, plain text, HTML."""

    subject: str
    text: str
    html: str


# -- the clients ------------------------------------------------------------------------------------


class _Client:
    """Calls one service with a bearer token; turns problem answers into exceptions."""

    name: ServiceName

    def __init__(self, http: httpx.AsyncClient, token: str) -> None:
        self._http = http
        self._headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}

    async def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            headers = {**self._headers, **kwargs.pop("headers", {})}
            response = await self._http.request(method, path, headers=headers, **kwargs)
        except httpx.HTTPError:
            raise Unavailable(self.name) from None
        if response.status_code >= 500:
            raise Unavailable(self.name)
        if response.status_code >= 400:
            try:
                problem = response.json()
            except ValueError:
                problem = {"title": response.reason_phrase}
            if not isinstance(problem, dict):
                problem = {"title": response.reason_phrase}
            kind = {404: NotFound, 401: Unauthorized, 403: Forbidden}.get(response.status_code, ServiceError)
            raise kind(self.name, response.status_code, problem)
        return response

    async def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        return (await self._call(method, path, **kwargs)).json()


class _FiguresClient(_Client):
    """The figures endpoints that registry and events both serve (issue 17)."""

    async def figures(self, ags: str, *, period: str) -> Figures:
        """Return the municipality's figures of ``period`` (``2026`` or ``2026-Q4``)."""
        data = await self._json("GET", f"/v1/municipalities/{ags}/figures", params={"period": period})
        return Figures.model_validate(data)

    async def network_figures(self, *, period: str) -> NetworkFigures:
        """Return every municipality's anonymised figures of ``period`` with the network's spread."""
        return NetworkFigures.model_validate(await self._json("GET", "/v1/network/figures", params={"period": period}))

    async def network_figures_csv(self, *, period: str) -> bytes:
        """Return the network's figures of ``period`` as the service writes them in CSV."""
        response = await self._call("GET", "/v1/network/figures", params={"period": period, "format": "csv"})
        return response.content


MEMBERS_PER_LOOKUP = 100
"""The registry answers at most this many members named by id in one list call."""


class RegistryClient(_FiguresClient):
    """The registry: municipalities, organisations, members, hours, consent, erasure, CSV."""

    name: ServiceName = "registry"

    async def municipalities(self) -> list[Municipality]:
        """Return every municipality (network-admin)."""
        return [Municipality.model_validate(m) for m in await self._json("GET", "/v1/municipalities")]

    async def municipality(self, ags: str) -> Municipality:
        """Return one municipality."""
        return Municipality.model_validate(await self._json("GET", f"/v1/municipalities/{ags}"))

    async def organisations(self, ags: str) -> list[Organisation]:
        """Return the organisations of ``ags``."""
        data = await self._json("GET", f"/v1/municipalities/{ags}/organisations")
        return [Organisation.model_validate(o) for o in data]

    async def organisation(self, ags: str, org_id: str) -> Organisation:
        """Return one organisation."""
        return Organisation.model_validate(await self._json("GET", f"/v1/municipalities/{ags}/organisations/{org_id}"))

    async def create_organisation(self, ags: str, body: dict[str, Any]) -> Organisation:
        """Create an organisation."""
        data = await self._json("POST", f"/v1/municipalities/{ags}/organisations", json=body)
        return Organisation.model_validate(data)

    async def update_organisation(self, ags: str, org_id: str, body: dict[str, Any]) -> Organisation:
        """Change an organisation."""
        data = await self._json("PATCH", f"/v1/municipalities/{ags}/organisations/{org_id}", json=body)
        return Organisation.model_validate(data)

    async def members(
        self,
        ags: str,
        *,
        status: MemberStatus | None = None,
        organisation_id: str | None = None,
        field: str | None = None,
        name: str | None = None,
        cursor: str | None = None,
        limit: int = 50,
    ) -> MemberPage:
        """Return a page of members matching the filters the registry offers."""
        params = {
            k: v
            for k, v in {
                "status": status,
                "organisation_id": organisation_id,
                "field": field,
                "name": name,
                "cursor": cursor,
                "limit": limit,
            }.items()
            if v not in (None, "")
        }
        return MemberPage.model_validate(await self._json("GET", f"/v1/municipalities/{ags}/members", params=params))

    async def members_by_id(self, ags: str, member_ids: list[str]) -> list[Member]:
        """Return the living members among ``member_ids`` (at most ``MEMBERS_PER_LOOKUP``), in one call."""
        params = [("id", member_id) for member_id in member_ids] + [("limit", str(len(member_ids)))]
        page = MemberPage.model_validate(await self._json("GET", f"/v1/municipalities/{ags}/members", params=params))
        return page.items

    async def member(self, ags: str, member_id: str) -> Member:
        """Return a member with derived figures."""
        return Member.model_validate(await self._json("GET", f"/v1/municipalities/{ags}/members/{member_id}"))

    async def register(self, ags: str, body: dict[str, Any]) -> Member:
        """Register a member; a duplicate is a 409 ServiceError with ``existing_member_id``."""
        return Member.model_validate(await self._json("POST", f"/v1/municipalities/{ags}/members", json=body))

    async def update(self, ags: str, member_id: str, body: dict[str, Any]) -> Member:
        """Change a member."""
        data = await self._json("PATCH", f"/v1/municipalities/{ags}/members/{member_id}", json=body)
        return Member.model_validate(data)

    async def change_status(self, ags: str, member_id: str, status: str) -> Member:
        """Change a member's status."""
        data = await self._json("POST", f"/v1/municipalities/{ags}/members/{member_id}/status", json={"status": status})
        return Member.model_validate(data)

    async def withdraw_consent(self, ags: str, member_id: str) -> Member:
        """Withdraw a member's consent."""
        data = await self._json("POST", f"/v1/municipalities/{ags}/members/{member_id}/consent/withdraw")
        return Member.model_validate(data)

    async def record_hours(self, ags: str, member_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """Record hours of a member."""
        data: dict[str, Any] = await self._json(
            "POST", f"/v1/municipalities/{ags}/members/{member_id}/hours", json=body
        )
        return data

    async def erase(self, ags: str, member_id: str) -> ErasureStatus:
        """Erase a member (DSGVO Art. 17)."""
        data = await self._json("DELETE", f"/v1/municipalities/{ags}/members/{member_id}")
        return ErasureStatus.model_validate(data)

    async def erasure_status(self, ags: str, member_id: str) -> ErasureStatus:
        """Return which services confirmed an erasure."""
        data = await self._json("GET", f"/v1/municipalities/{ags}/members/{member_id}/erasure")
        return ErasureStatus.model_validate(data)

    async def import_csv(self, ags: str, *, content: bytes, filename: str, dry_run: bool) -> ImportReport:
        """Validate (dry run) or import a member CSV; a file with row errors is a 422 carrying the report."""
        data = await self._json(
            "POST",
            f"/v1/municipalities/{ags}/members/import",
            params={"dry_run": str(dry_run).lower()},
            files={"file": (filename, content, "text/csv")},
        )
        return ImportReport.model_validate(data)

    async def export_csv(self, ags: str) -> bytes:
        """Return the members as CSV."""
        return (await self._call("GET", f"/v1/municipalities/{ags}/members.csv")).content

    async def practice_examples(
        self,
        *,
        q: str | None = None,
        field: str | None = None,
        kind: str | None = None,
        municipality: str | None = None,
        offset: int = 0,
        limit: int = 20,
    ) -> PracticePage:
        """Search the network's practice examples (every word of ``q`` must occur)."""
        params = {
            k: v
            for k, v in {
                "q": q,
                "field": field,
                "kind": kind,
                "municipality": municipality,
                "offset": offset,
                "limit": limit,
            }.items()
            if v not in (None, "")
        }
        return PracticePage.model_validate(await self._json("GET", "/v1/network/practice-examples", params=params))

    async def practice_example(self, example_id: str) -> PracticeExample:
        """Return one practice example of the network."""
        return PracticeExample.model_validate(await self._json("GET", f"/v1/network/practice-examples/{example_id}"))

    async def publish_practice_example(self, ags: str, body: dict[str, Any]) -> PracticeExample:
        """Publish a practice example of ``ags`` to the network."""
        data = await self._json("POST", f"/v1/municipalities/{ags}/practice-examples", json=body)
        return PracticeExample.model_validate(data)

    async def change_practice_example(
        self, ags: str, example_id: str, body: dict[str, Any], *, revision: int
    ) -> PracticeExample:
        """Change a practice example of ``ags`` read at ``revision`` (412 when it changed since)."""
        data = await self._json(
            "PATCH",
            f"/v1/municipalities/{ags}/practice-examples/{example_id}",
            json=body,
            headers={"If-Match": f'"{revision}"'},
        )
        return PracticeExample.model_validate(data)

    async def withdraw_practice_example(self, ags: str, example_id: str, *, revision: int) -> None:
        """Withdraw a practice example of ``ags`` read at ``revision``."""
        await self._call(
            "DELETE",
            f"/v1/municipalities/{ags}/practice-examples/{example_id}",
            headers={"If-Match": f'"{revision}"'},
        )

    async def create_municipality(self, body: dict[str, Any]) -> Municipality:
        """Create a municipality (network-admin)."""
        return Municipality.model_validate(await self._json("POST", "/v1/municipalities", json=body))

    async def update_municipality(self, ags: str, body: dict[str, Any]) -> Municipality:
        """Change a municipality (network-admin)."""
        return Municipality.model_validate(await self._json("PATCH", f"/v1/municipalities/{ags}", json=body))


class EventsClient(_FiguresClient):
    """The events service: recognition events, invitations, honours."""

    name: ServiceName = "events"

    async def events(self, ags: str) -> list[RecognitionEvent]:
        """Return the municipality's recognition events."""
        return [RecognitionEvent.model_validate(e) for e in await self._json("GET", f"/v1/municipalities/{ags}/events")]

    async def event(self, ags: str, event_id: str) -> RecognitionEvent:
        """Return an event with its counts."""
        return RecognitionEvent.model_validate(await self._json("GET", f"/v1/municipalities/{ags}/events/{event_id}"))

    async def invitations(self, ags: str, event_id: str, *, status: str | None = None) -> list[Invitation]:
        """Return an event's invitations in issue order."""
        params = {"status": status} if status else None
        data = await self._json("GET", f"/v1/municipalities/{ags}/events/{event_id}/invitations", params=params)
        return [Invitation.model_validate(i) for i in data]

    async def honours(self, ags: str, *, status: str | None = None) -> list[Honour]:
        """Return honours, proposed ones first."""
        params = {"status": status} if status else None
        data = await self._json("GET", f"/v1/municipalities/{ags}/honours", params=params)
        return [Honour.model_validate(h) for h in data]

    async def create_event(self, ags: str, body: dict[str, Any]) -> RecognitionEvent:
        """Create a recognition event (draft or scheduled)."""
        return RecognitionEvent.model_validate(await self._json("POST", f"/v1/municipalities/{ags}/events", json=body))

    async def update_event(self, ags: str, event_id: str, body: dict[str, Any]) -> RecognitionEvent:
        """Change an event, or schedule, complete or cancel it."""
        data = await self._json("PATCH", f"/v1/municipalities/{ags}/events/{event_id}", json=body)
        return RecognitionEvent.model_validate(data)

    async def preview_invitations(self, ags: str, event_id: str, criteria: dict[str, Any]) -> InvitationPreview:
        """Return how many members the criteria match and who (writes nothing)."""
        path = f"/v1/municipalities/{ags}/events/{event_id}/invitations/preview"
        return InvitationPreview.model_validate(await self._json("POST", path, json=criteria))

    async def issue_invitations(self, ags: str, event_id: str, criteria: dict[str, Any]) -> IssueResult:
        """Invite every member the criteria match, once (idempotent)."""
        path = f"/v1/municipalities/{ags}/events/{event_id}/invitations/issue"
        return IssueResult.model_validate(await self._json("POST", path, json=criteria))

    async def record_attendance(self, ags: str, event_id: str, invitation_id: str, *, attended: bool) -> Invitation:
        """Check an accepted invitee in (or record a no-show)."""
        path = f"/v1/municipalities/{ags}/events/{event_id}/invitations/{invitation_id}/attendance"
        return Invitation.model_validate(await self._json("POST", path, json={"attended": attended}))

    async def venue_csv(self, ags: str, event_id: str) -> bytes:
        """Return the list for the venue (CSV, ';'-separated)."""
        return (await self._call("GET", f"/v1/municipalities/{ags}/events/{event_id}/attendees.csv")).content

    async def grant_honour(self, ags: str, honour_id: str, body: dict[str, Any]) -> Honour:
        """Grant a proposed honour (card number and start of validity optional)."""
        data = await self._json("POST", f"/v1/municipalities/{ags}/honours/{honour_id}/grant", json=body)
        return Honour.model_validate(data)

    async def reject_honour(self, ags: str, honour_id: str, *, reason: str) -> Honour:
        """Reject a proposed honour with a reason."""
        data = await self._json("POST", f"/v1/municipalities/{ags}/honours/{honour_id}/reject", json={"reason": reason})
        return Honour.model_validate(data)

    async def honour_rules(self, ags: str) -> HonourRules:
        """Return the municipality's honour rules (state defaults where it set none)."""
        return HonourRules.model_validate(await self._json("GET", f"/v1/municipalities/{ags}/honour-rules"))

    async def honour_rule_defaults(self) -> HonourRuleDefaults:
        """Return the state defaults and the dated state thresholds every municipality starts from."""
        return HonourRuleDefaults.model_validate(await self._json("GET", "/v1/honour-rules/defaults"))


class NotificationsClient(_Client):
    """The notifications service: the delivery log, templates, branding."""

    name: ServiceName = "notifications"

    async def deliveries(
        self,
        ags: str,
        *,
        member_id: str | None = None,
        status: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[Delivery]:
        """Return deliveries, newest first."""
        params: dict[str, Any] = {"limit": limit, "offset": offset}
        if member_id:
            params["member_id"] = member_id
        if status:
            params["status"] = status
        data = await self._json("GET", f"/v1/municipalities/{ags}/deliveries", params=params)
        return [Delivery.model_validate(d) for d in data]

    async def delivery(self, ags: str, delivery_id: str) -> Delivery:
        """Return one delivery of the log."""
        return Delivery.model_validate(await self._json("GET", f"/v1/municipalities/{ags}/deliveries/{delivery_id}"))

    async def resend(self, ags: str, delivery_id: str) -> Delivery:
        """Queue a delivery again (consent and status are checked again); return the new delivery."""
        data = await self._json("POST", f"/v1/municipalities/{ags}/deliveries/{delivery_id}/resend")
        return Delivery.model_validate(data)

    async def branding(self, ags: str) -> Branding:
        """Return the municipality's branding (the default until it sets one)."""
        return Branding.model_validate(await self._json("GET", f"/v1/municipalities/{ags}/branding"))

    async def put_branding(self, ags: str, body: dict[str, Any]) -> Branding:
        """Store the municipality's branding."""
        return Branding.model_validate(await self._json("PUT", f"/v1/municipalities/{ags}/branding", json=body))

    async def preview_template(self, ags: str, name: str, body: dict[str, Any]) -> RenderedMessage:
        """Render template ``name`` with sample data and the municipality's branding (staff)."""
        data = await self._json("POST", f"/v1/municipalities/{ags}/templates/{name}/preview", json=body)
        return RenderedMessage.model_validate(data)


class Services:
    """The three clients for one signed-in request."""

    def __init__(self, http: dict[ServiceName, httpx.AsyncClient], token: str) -> None:
        self.registry = RegistryClient(http["registry"], token)
        self.events = EventsClient(http["events"], token)
        self.notifications = NotificationsClient(http["notifications"], token)
