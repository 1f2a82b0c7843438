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


MASKED = "[masked]"
SECRET_PARAMS = frozenset({"token", "code", "secret", "sig", "signature"})
"""Path parameters and query keys whose values are bearer secrets (RSVP links, card codes)."""

_SECRET_QUERY = re.compile(r"([?&](?:" + "|".join(sorted(SECRET_PARAMS)) + r")=)[^&#\s\"']+")
_secret_paths: list[re.Pattern[str]] = []


def register_secret_route(template: str) -> None:
    """Mask the secret parameters of the route ``template`` (``/rsvp/{token}``) wherever a log line shows its path."""
    parts = re.split(r"(\{[^}]+\})", template)
    pattern = ""
    for part in parts:
        if part.startswith("{"):
            name = part[1:-1].split(":")[0]
            pattern += r")[^/?#\s\"']+(" if name in SECRET_PARAMS else r"[^/?#\s\"']+"
        else:
            pattern += re.escape(part)
    compiled = re.compile("(" + pattern + ")")
    if compiled.groups > 1 and all(p.pattern != compiled.pattern for p in _secret_paths):
        _secret_paths.append(compiled)


def _masked_match(match: re.Match[str]) -> str:
    return MASKED.join(match.group(i) for i in range(1, (match.re.groups or 0) + 1))


def mask_secrets(text: str) -> str:
    """Return ``text`` with the secrets of registered token routes and secret query values masked."""
    for pattern in _secret_paths:
        text = pattern.sub(_masked_match, text)
    return _SECRET_QUERY.sub(lambda m: m.group(1) + MASKED, text)


def redact_text(text: str) -> str:
    """Return ``text`` with e-mail addresses, phone numbers and link secrets replaced."""
    return mask_secrets(_PHONE.sub(REDACTED, _EMAIL.sub(REDACTED, text)))


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


class PersonalDataFilter(logging.Filter):
    """Pass standard-library records (uvicorn, aiokafka, FastStream) through the same redaction as ours."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Replace the record's message by its redacted text; keep the record."""
        try:
            message = record.getMessage()
        except Exception:
            message = str(record.msg)
        record.msg = redact_text(message)
        record.args = None
        return True


LIBRARY_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "faststream", "aiokafka")
"""Loggers that bring their own handlers; they are made to propagate to the root's redacting handler."""


def route_library_logs() -> None:
    """Strip the handlers of the library loggers so their records reach the root handler and its filter."""
    names = [
        name
        for name in logging.root.manager.loggerDict
        if any(name == lib or name.startswith(lib + ".") for lib in LIBRARY_LOGGERS)
    ]
    for name in {*names, *LIBRARY_LOGGERS}:
        logger = logging.getLogger(name)
        for handler in list(logger.handlers):
            logger.removeHandler(handler)
        logger.propagate = True


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
        handler = logging.StreamHandler(sys.stderr)
        handler.addFilter(PersonalDataFilter())
        handler.setFormatter(
            structlog.stdlib.ProcessorFormatter(
                foreign_pre_chain=[
                    structlog.stdlib.add_logger_name,
                    *processors,
                ],
                processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
            )
        )
        logging.root.addHandler(handler)
        logging.root.setLevel(logging.WARNING)
        _configured = True
    route_library_logs()


def get_logger(name: str | None = None) -> Any:
    """Return a structlog logger."""
    return structlog.get_logger(name)
