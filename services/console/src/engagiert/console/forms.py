"""Reads the console's forms and shows the services' refusals next to the fields they concern, in German."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from starlette.datastructures import FormData

from engagiert.console.clients import ServiceError

# pydantic's error types -> text ids (strings/errors.toml); anything else is "invalid".
_TYPES = {
    "missing": "errors.field_missing",
    "string_too_short": "errors.field_missing",
    "string_too_long": "errors.field_too_long",
    "string_pattern_mismatch": "errors.field_pattern",
    "value_error": "errors.field_invalid",
    "date_from_datetime_parsing": "errors.field_date",
    "date_parsing": "errors.field_date",
    "date_type": "errors.field_date",
    "datetime_parsing": "errors.field_datetime",
    "datetime_from_date_parsing": "errors.field_datetime",
    "float_parsing": "errors.field_number",
    "float_type": "errors.field_number",
    "int_parsing": "errors.field_number",
    "greater_than": "errors.field_too_small",
    "greater_than_equal": "errors.field_too_small",
    "less_than": "errors.field_too_large",
    "less_than_equal": "errors.field_too_large",
    "literal_error": "errors.field_choice",
    "enum": "errors.field_choice",
    "extra_forbidden": "errors.field_invalid",
}
_EMAIL_HINT = "email"


@dataclass
class FormErrors:
    """Text ids per form field (dotted names, as the services' ``loc``), and for the whole form."""

    fields: dict[str, list[str]] = field(default_factory=dict)
    general: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.fields or self.general)

    def add(self, name: str, key: str) -> None:
        """Add the text ``key`` to field ``name`` (once)."""
        keys = self.fields.setdefault(name, [])
        if key not in keys:
            keys.append(key)


def errors_from(exc: ServiceError, *, known: set[str] | None = None) -> FormErrors:
    """Return the refusal ``exc`` as field errors; fields the form does not show become general errors."""
    found = FormErrors()
    for err in exc.field_errors:
        loc = [str(p) for p in err.get("loc", []) if str(p) not in ("body", "query", "path")]
        name = ".".join(loc)
        kind = str(err.get("type", ""))
        key = _TYPES.get(kind, "errors.field_invalid")
        if kind == "value_error" and _EMAIL_HINT in name:
            key = "errors.field_email"
        if known is None or name in known:
            found.add(name, key)
        else:
            found.general.append(key)
    if not found:
        found.general.append(_general_key(exc))
    return found


def _general_key(exc: ServiceError) -> str:
    if exc.status == 409 and "existing_member_id" in exc.problem:
        return "errors.duplicate"
    if exc.status == 409:
        return "errors.conflict"
    if exc.status == 413:
        return "errors.too_large"
    if exc.status == 422:
        return "errors.invalid_change"
    return "errors.refused"


def text(form: FormData, name: str) -> str:
    """Return a text field's value, stripped ('' when missing or a file)."""
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def optional(form: FormData, name: str) -> str | None:
    """Return a text field's value, or None when empty."""
    return text(form, name) or None


def values(form: FormData) -> dict[str, Any]:
    """Return the form's text fields (to fill the form again after a refusal)."""
    out: dict[str, Any] = {}
    for key in form:
        items = [v for v in form.getlist(key) if isinstance(v, str)]
        out[key] = items if len(items) > 1 else (items[0] if items else "")
    return out


# The registry's CSV row messages ("<column path>: <pydantic message>") -> text ids, by the message's start.
_ROW_MESSAGES = (
    ("Field required", "imports.msg_missing"),
    ("String should have at least", "imports.msg_missing"),
    ("value is not a valid email address", "imports.msg_email"),
    ("Input should be a valid date", "imports.msg_date"),
    ("String should match pattern", "imports.msg_pattern"),
    ("Input should be", "imports.msg_choice"),
    ("String should have at most", "imports.msg_too_long"),
)
_ROW_FIELDS = {
    "given_name": "members.given_name",
    "family_name": "members.family_name",
    "date_of_birth": "members.date_of_birth",
    "language": "members.language",
    "contact.email": "members.email",
    "contact.phone": "members.phone",
    "contact.postal_address.street": "members.street",
    "contact.postal_address.postal_code": "members.postal_code",
    "contact.postal_address.city": "members.city",
    "consent.channels": "members.consent_channels",
    "engagements.0.field": "members.field",
    "engagements.0.since": "members.since",
    "engagements.0.role": "members.role",
}


def row_error(message: str, t: Any) -> str:
    """Return a CSV row message of the registry in the user's language (the original when unknown)."""
    if message.startswith("the same person as line "):
        return str(t("imports.msg_same_person", line=message.rsplit(" ", 1)[-1]))
    if message.startswith("missing columns: "):
        return str(t("imports.msg_columns", columns=message.split(": ", 1)[1]))
    if message == "the file is not UTF-8":
        return str(t("imports.msg_encoding"))
    column, _, text_ = message.partition(": ")
    if not text_:
        return message
    column = column.removesuffix(".0") if column.startswith("consent.channels.") else column
    column = "consent.channels" if column.startswith("consent.channels") else column
    label = t(_ROW_FIELDS[column]) if column in _ROW_FIELDS else column
    for start, key in _ROW_MESSAGES:
        if text_.startswith(start):
            return f"{label}: {t(key)}"
    return f"{label}: {text_}"
