"""Configures structlog once: JSON off a TTY, and a processor that keeps personal data out of logs."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

PERSONAL_KEYS = frozenset(
    {
        "email",
        "e_mail",
        "phone",
        "telephone",
        "name",
        "given_name",
        "family_name",
        "first_name",
        "last_name",
        "full_name",
        "address",
        "postal_address",
        "street",
        "date_of_birth",
        "birthday",
        "to",
        "recipient",
        "contact",
    }
)
"""Log fields whose values are personal data: they are replaced, whatever they hold."""

_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
_PHONE = re.compile(r"(?<!\w)\+?\d[\d /()-]{7,}\d(?!\w)")
REDACTED = "[redacted]"


def redact_text(text: str) -> str:
    """Return ``text`` with e-mail addresses and phone numbers replaced."""
    return _PHONE.sub(REDACTED, _EMAIL.sub(REDACTED, text))


def _redact_value(value: Any) -> Any:
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {k: (REDACTED if k in PERSONAL_KEYS else _redact_value(v)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redact_value(v) for v in value]
    return value


def redact_personal_data(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Replace personal data in a log event: known personal keys, e-mail addresses, phone numbers."""
    for key in list(event_dict):
        if key in PERSONAL_KEYS:
            event_dict[key] = REDACTED
        elif key not in ("timestamp", "level", "logger"):
            event_dict[key] = _redact_value(event_dict[key])
    return event_dict


_configured = False


def configure_logging(*, level: str = "INFO", json: bool | None = None, service: str | None = None) -> None:
    """Configure structlog and the standard library's logging once per process."""
    global _configured
    render_json = (not sys.stderr.isatty()) if json is None else json
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        redact_personal_data,
    ]
    renderer: Any = structlog.processors.JSONRenderer() if render_json else structlog.dev.ConsoleRenderer()
    structlog.configure(
        processors=[*processors, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    if service:
        structlog.contextvars.bind_contextvars(service=service)
    if not _configured:
        logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s %(message)s")
        _configured = True


def get_logger(name: str | None = None) -> Any:
    """Return a structlog logger."""
    return structlog.get_logger(name)
