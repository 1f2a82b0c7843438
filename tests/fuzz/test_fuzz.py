"""The short fuzz of ``make test``: every operation of each service, a bounded number of generated requests.

Each service runs as a real uvicorn process on the shared stack (its own database and consumer
group) and is fuzzed through Schemathesis' Python API with a valid token for every
municipality: valid and invalid requests alike must never get a server error or a status code
the OpenAPI document does not list. ``make fuzz`` is the long form (tools/fuzz.py).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, status_code_conformance

from engagiert.shared.auth import mint_token
from engagiert.shared.settings import LOCAL_AUTH_KEY
from engagiert.shared.testing.service import ServiceProcess

pytestmark = pytest.mark.integration

AGS = "05774032"
EXAMPLES = 8
"""Generated requests per operation and mode (valid, invalid): about 900 requests, 3 minutes in all."""
SERVICES = ("registry", "events", "notifications")


@pytest.fixture(scope="module")
def token() -> str:
    return mint_token(key=LOCAL_AUTH_KEY, subject="fuzzer", municipalities=["*"], roles=["staff", "network-admin"])


@pytest.fixture(scope="module", params=SERVICES)
def service(request: pytest.FixtureRequest, stack: object, token: str) -> Iterator[ServiceProcess]:
    name = str(request.param)
    run = uuid.uuid4().hex[:8]
    proc = ServiceProcess(
        f"engagiert.{name}.main",
        env={
            f"{name.upper()}_MONGODB_DATABASE": f"fuzz_{name}_{run}",
            f"{name.upper()}_CONSUMER_GROUP": f"fuzz-{name}-{run}",
            "ENVIRONMENT": "test",
        },
    ).start()
    try:
        if name == "registry":
            r = httpx.post(
                f"{proc.url}/v1/municipalities",
                json={"ags": AGS, "name": "Paderborn", "kind": "Stadt"},
                headers={"Authorization": f"Bearer {token}"},
                timeout=30,
            )
            assert r.status_code in (201, 409), r.text
        yield proc
    finally:
        proc.stop()


def test_no_operation_answers_a_server_error_or_an_undocumented_status(service: ServiceProcess, token: str) -> None:
    """Fuzz every operation with valid and invalid requests: no 5xx, no status or content type outside the document."""
    schema = schemathesis.openapi.from_url(f"{service.url}/openapi.json", timeout=30)
    headers = {"Authorization": f"Bearer {token}"}
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        if "operations" in (operation.definition.raw.get("tags") or []):
            continue  # /healthz, /readyz, /asyncapi.json: no input; /readyz answers 503 when not ready
        operations += 1
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            params = {"ags": AGS} if "{ags}" in operation.path else None
            strategy = operation.as_strategy(generation_mode=mode, path_parameters=params)

            @settings(
                max_examples=EXAMPLES,
                deadline=None,
                database=None,
                derandomize=True,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            @given(case=strategy)
            def call(case: schemathesis.Case) -> None:
                case.call_and_validate(
                    base_url=service.url,
                    headers=headers,
                    checks=[not_a_server_error, status_code_conformance, content_type_conformance],
                    timeout=30,
                )

            try:
                call()
            except Unsatisfiable:
                continue  # no invalid request exists for an operation without parameters (/healthz)
            except Exception as exc:
                failures.append(f"{operation.method.upper()} {operation.path} ({mode}): {str(exc)[:600]}")
    print(f"fuzzed {operations} operations x 2 modes x {EXAMPLES} examples; failures: {len(failures)}")
    assert not failures, "\n\n".join(failures) + "\n\nservice log:\n" + service.log_tail(40)
