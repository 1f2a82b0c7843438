"""Settings prefixes, personal data kept out of logs, JSON Schemas kept in step with the models."""

from __future__ import annotations

from typing import ClassVar

import pytest
import structlog
from pydantic_settings import SettingsConfigDict

from engagiert.shared import schemas
from engagiert.shared.logging import REDACTED, redact_personal_data
from engagiert.shared.settings import ServiceSettings


class DemoSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="DEMO_", extra="ignore")
    service_name: ClassVar[str] = "demo"


def test_shared_settings_are_read_unprefixed_and_the_prefix_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    """KAFKA_BOOTSTRAP_SERVERS serves every service; DEMO_KAFKA_BOOTSTRAP_SERVERS overrides it."""
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "shared:9092")
    assert DemoSettings().kafka_bootstrap_servers == "shared:9092"
    monkeypatch.setenv("DEMO_KAFKA_BOOTSTRAP_SERVERS", "own:9092")
    assert DemoSettings().kafka_bootstrap_servers == "own:9092"


def test_service_only_settings_need_the_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    """PORT alone does not configure a service; DEMO_PORT does."""
    monkeypatch.setenv("PORT", "1234")
    assert DemoSettings().port == 8000
    monkeypatch.setenv("DEMO_PORT", "8009")
    assert DemoSettings().port == 8009


def test_derived_names_follow_the_service() -> None:
    """Database, group and source derive from the service name."""
    s = DemoSettings()
    assert (s.database_name, s.group_id, s.source) == ("engagiert_demo", "engagiert-demo", "/engagiert/demo")


def test_personal_data_never_reaches_a_log_line() -> None:
    """Known personal keys are replaced and e-mails/phones inside messages are masked."""
    event = redact_personal_data(
        None,
        "info",
        {
            "event": "member_registered",
            "email": "anna@example.org",
            "family_name": "Muster",
            "detail": "sent to anna@example.org, call +49 5251 881234",
            "nested": {"phone": "05251 881234", "member_id": "m1"},
            "member_id": "m1",
        },
    )
    text = str(event)
    assert "anna@example.org" not in text
    assert "Muster" not in text
    assert "881234" not in text
    assert event["member_id"] == "m1"
    assert event["email"] == REDACTED


def test_the_configured_logger_redacts(capsys: pytest.CaptureFixture[str]) -> None:
    """The processor is part of the configured chain."""
    from engagiert.shared.logging import configure_logging

    configure_logging(json=True)
    structlog.get_logger().info("hello", email="x@y.de", member_id="m9")
    err = capsys.readouterr().err
    assert "x@y.de" not in err
    assert "m9" in err


def test_the_committed_json_schemas_match_the_models() -> None:
    """shared/schemas/ is regenerated whenever a contract changes (python -m engagiert.shared.schemas)."""
    assert schemas.main(["--check"]) == 0, "stale schemas: run `make schemas`"
