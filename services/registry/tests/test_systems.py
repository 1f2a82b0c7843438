"""The grant check of connected systems, one rule at a time (no stack: the rules are pure)."""

from __future__ import annotations

from typing import Any

import pytest

from engagiert.registry.services.systems import PERMISSIONS, refusal
from engagiert.shared import topics
from engagiert.shared.access import service_grants, system_grants
from engagiert.shared.contracts import ConfirmErasure, RegisterMember, ReportHours
from engagiert.shared.settings import KafkaClientSettings, aiokafka_options, confluent_config, java_client_properties

BIELEFELD, PADERBORN = "05711000", "05774032"
GRANT: dict[str, Any] = {
    "_id": "vv-bielefeld",
    "status": "connected",
    "municipalities": [BIELEFELD],
    "permissions": ["register-members"],
}


def _why(grant: dict[str, Any] | None, event_type: str, ags: str) -> str | None:
    return refusal(grant, system="vv-bielefeld", event_type=event_type, municipality=ags)


def test_a_command_within_the_grant_is_admitted() -> None:
    """Its municipality and its kind are granted: no refusal."""
    assert _why(GRANT, RegisterMember.TYPE, BIELEFELD) is None


@pytest.mark.parametrize(
    ("grant", "event_type", "ags", "reason"),
    [
        (GRANT, RegisterMember.TYPE, PADERBORN, f"may not act for municipality {PADERBORN}"),
        (GRANT, ReportHours.TYPE, BIELEFELD, "lacks the permission report-hours"),
        (GRANT, ConfirmErasure.TYPE, BIELEFELD, "may not send de.engagiert.erasure.confirm.v1"),
        ({**GRANT, "status": "revoked"}, RegisterMember.TYPE, BIELEFELD, "was revoked"),
        (None, RegisterMember.TYPE, BIELEFELD, "is not connected"),
    ],
)
def test_a_command_outside_the_grant_is_refused_with_its_reason(
    grant: dict[str, Any] | None, event_type: str, ags: str, reason: str
) -> None:
    """Another municipality, an ungranted kind, a confirmation, a revoked or unknown system: refused."""
    why = _why(grant, event_type, ags)
    assert why is not None
    assert reason in why


def test_the_topic_names_the_system_and_only_system_topics_do() -> None:
    """registry.inbound.<name>.v1 names a system; the operators' channel and dead letters do not."""
    assert topics.system_of_topic(topics.system_inbound_topic("vv-bielefeld")) == "vv-bielefeld"
    assert topics.system_of_topic(topics.REGISTRY_INBOUND) is None
    assert topics.system_of_topic(topics.dlq(topics.system_inbound_topic("vv-bielefeld"))) is None
    for bad in ("VV", "-vv", "vv.other", "a" * 65, ""):
        with pytest.raises(ValueError, match="system name"):
            topics.system_inbound_topic(bad)


def test_a_system_may_write_only_its_topic_and_read_only_its_dead_letters() -> None:
    """Its ACLs: WRITE on its topic, READ on its DLQ; the registry writes that DLQ."""
    lines = sorted(g.describe() for g in system_grants("vv-bielefeld"))
    assert lines == [
        "User:registry WRITE topic registry.inbound.vv-bielefeld.v1.dlq (literal)",
        "User:system-vv-bielefeld READ topic registry.inbound.vv-bielefeld.v1.dlq (literal)",
        "User:system-vv-bielefeld WRITE topic registry.inbound.vv-bielefeld.v1 (literal)",
    ]


def test_only_events_and_notifications_may_write_erasure_confirmations() -> None:
    """No service but those two gets WRITE on the confirmations topic; only notifications on the operators' one."""
    grants = service_grants()
    writers = {g.user for g in grants if g.operation == "WRITE" and g.name == topics.REGISTRY_ERASURE_CONFIRMATIONS}
    assert writers == {"events", "notifications"}
    operators = {g.user for g in grants if g.operation == "WRITE" and g.name == topics.REGISTRY_INBOUND}
    assert operators == {"notifications"}, "its unsubscribes (consent.withdraw) only"
    assert set(PERMISSIONS) == {"register-members", "report-hours"}


def test_every_client_kind_gets_the_same_sasl_settings() -> None:
    """aiokafka, confluent-kafka and the Java tools read one set of KAFKA_* settings."""
    access = KafkaClientSettings(
        kafka_bootstrap_servers="k:9092",
        kafka_security_protocol="SASL_PLAINTEXT",
        kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_username="registry",
        kafka_sasl_password="s3cret",  # type: ignore[arg-type]
    )
    assert aiokafka_options(access) == {
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "registry",
        "sasl_plain_password": "s3cret",
    }
    assert confluent_config(access)["sasl.username"] == "registry"
    assert 'username="registry" password="s3cret"' in java_client_properties(access)["sasl.jaas.config"]
    assert aiokafka_options(KafkaClientSettings(kafka_security_protocol="PLAINTEXT")) == {}


def test_the_registry_may_delete_records_of_the_inbound_topics_only() -> None:
    """The erasure purge deletes inbound records and rewrites their DLQs: DELETE on ``registry.inbound.`` only."""
    deletes = [g.describe() for g in service_grants() if g.operation == "DELETE"]
    assert deletes == ["User:registry DELETE topic registry.inbound. (prefix)"]
