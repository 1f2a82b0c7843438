"""Unit tests of the console's parts that need no stack: texts, sessions, CSRF, error mapping, redirects."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from engagiert.console import clients
from engagiert.console.api.auth import safe_next
from engagiert.console.config import ConsoleSettings
from engagiert.console.forms import errors_from, row_error
from engagiert.console.i18n import LANGUAGES, Translator, catalogue
from engagiert.console.main import create_app
from engagiert.console.oidc import User
from engagiert.console.sessions import SessionStore
from engagiert.shared.testing import token_for

TEMPLATES = Path(__file__).parents[1] / "src" / "engagiert" / "console" / "templates"
SOURCES = Path(__file__).parents[1] / "src" / "engagiert" / "console"
_LITERAL_KEY = re.compile(r"""\bt\(\s*["']([a-z_]+\.[a-z0-9_-]+)["']""")
_PY_KEY = re.compile(r"""["']((?:layout|nav|forms|errors|auth|start|members|imports|organisations)\.[a-z0-9_-]+)["']""")


def test_every_text_has_german_and_english() -> None:
    """Each text id of the catalogue carries both languages, none empty."""
    for key, texts in catalogue().items():
        assert set(texts) == set(LANGUAGES), key
        assert all(t.strip() for t in texts.values()), key


def test_every_text_id_a_template_or_module_names_exists() -> None:
    """A text id written literally in a template or a module is in the catalogue (no id shown raw)."""
    used: set[str] = set()
    for path in TEMPLATES.rglob("*.html"):
        used |= set(_LITERAL_KEY.findall(path.read_text(encoding="utf-8")))
    for path in SOURCES.rglob("*.py"):
        used |= set(_PY_KEY.findall(path.read_text(encoding="utf-8")))
    # Prefixes completed at run time ("members.status_" ~ status) and file names are no ids.
    used = {k for k in used if not k.endswith(("_", ".html"))}
    missing = sorted(k for k in used if k not in catalogue())
    assert not missing, missing
    assert len(used) > 100


def test_placeholders_are_the_same_in_both_languages() -> None:
    """A German text and its English twin use the same {placeholders}."""
    for key, texts in catalogue().items():
        names = {lang: set(re.findall(r"\{(\w+)\}", text)) for lang, text in texts.items()}
        assert names["de"] == names["en"], key


def test_translator_falls_back_to_the_id() -> None:
    """An unknown id shows as itself, a known one in the chosen language."""
    assert Translator("en")("nav.members") == "Members"
    assert Translator("de")("nav.members") == "Mitglieder"
    assert Translator("de")("nope.nothing") == "nope.nothing"


def test_a_session_ends_when_idle_or_too_old() -> None:
    """The store forgets a session unused for the idle time, and any session past the absolute time."""
    now = [0.0]
    store = SessionStore(idle_seconds=10, max_seconds=25, clock=lambda: now[0])
    sid = store.save(None, {"a": 1})
    now[0] = 9
    assert store.load(sid) == {"a": 1}
    now[0] = 18
    assert store.load(sid) == {"a": 1}
    now[0] = 26  # used 8 s ago, but older than 25 s
    assert store.load(sid) is None
    other = store.save(None, {"b": 2})
    now[0] = 37
    assert store.load(other) is None


def test_rotation_gives_a_new_id_and_ends_the_old() -> None:
    """After sign-in the session moves to a fresh id; the id a visitor had before no longer works."""
    store = SessionStore(idle_seconds=60, max_seconds=600)
    old = store.save(None, {"state": "x"})
    new = store.rotate(old, {"user": "u"})
    assert new != old
    assert store.load(old) is None
    assert store.load(new) == {"user": "u"}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("/m/05774032/members", "/m/05774032/members"),
        ("//evil.example", "/"),
        ("https://evil.example", "/"),
        (None, "/"),
    ],
)
def test_after_sign_in_only_local_paths_are_followed(value: str | None, expected: str) -> None:
    """The ``next`` of sign-in never leads to another host."""
    assert safe_next(value) == expected


def test_service_validation_errors_land_on_their_fields() -> None:
    """A 422 of the registry becomes text ids per form field; an unknown field a general error."""
    exc = clients.ServiceError(
        "registry",
        422,
        {
            "errors": [
                {"loc": ["body", "family_name"], "msg": "too short", "type": "string_too_short"},
                {"loc": ["body", "contact", "email"], "msg": "bad", "type": "value_error"},
                {"loc": ["body", "juleica", "holder"], "msg": "bad", "type": "bool_parsing"},
            ]
        },
    )
    found = errors_from(exc, known={"family_name", "contact.email"})
    assert found.fields == {"family_name": ["errors.field_missing"], "contact.email": ["errors.field_email"]}
    assert found.general == ["errors.field_invalid"]
    duplicate = errors_from(clients.ServiceError("registry", 409, {"existing_member_id": "m-1"}))
    assert duplicate.general == ["errors.duplicate"]


def test_csv_row_messages_read_in_german() -> None:
    """The registry's English row messages show in the user's language."""
    t = Translator("de")
    assert row_error("family_name: Field required", t) == "Nachname: fehlt"
    assert row_error("the same person as line 3", t) == "dieselbe Person wie in Zeile 3"
    assert row_error("contact.email: value is not a valid email address: x", t).startswith("E-Mail: keine")


def test_the_user_is_read_from_keycloaks_token_shape() -> None:
    """Roles come from ``realm_access.roles`` (Keycloak) or ``roles`` (local tokens); ``*`` means every municipality."""
    import jwt

    token = jwt.encode(
        {
            "sub": "u1",
            "preferred_username": "owl-staff",
            "name": "Olga Wehr",
            "realm_access": {"roles": ["staff", "offline_access"]},
            "municipalities": ["05774032", "05711000"],
        },
        "k" * 32,
        algorithm="HS256",
    )
    user = User.from_access_token(token)
    assert (user.username, user.name, user.can_write) == ("owl-staff", "Olga Wehr", True)
    assert user.may_act_for("05711000")
    assert not user.may_act_for("05315000")
    reader = User.from_access_token(token_for(["*"], "reader"))
    assert not reader.can_write
    assert reader.may_act_for("05315000")


@pytest.fixture
async def anonymous() -> httpx.AsyncClient:
    app = create_app(ConsoleSettings(oidc_issuer="http://127.0.0.1:9/realms/none"))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")


async def test_a_page_without_a_session_sends_the_browser_to_sign_in(anonymous: httpx.AsyncClient) -> None:
    """A signed-out visitor of a page is redirected to sign-in, which comes back to that page."""
    response = await anonymous.get("/m/05774032/members?q=anna")
    assert response.status_code == 303
    assert response.headers["location"] == "/auth/login?next=%2Fm%2F05774032%2Fmembers%3Fq%3Danna"


async def test_a_post_without_the_csrf_token_gets_the_403_page(anonymous: httpx.AsyncClient) -> None:
    """A form POST without the session's token is refused with a page in German, never a trace."""
    response = await anonymous.post("/auth/logout", data={"x": "1"})
    assert response.status_code == 403
    assert "text/html" in response.headers["content-type"]
    assert "Keine Berechtigung" in response.text
    assert "Traceback" not in response.text


async def test_pages_carry_the_browser_protections(anonymous: httpx.AsyncClient) -> None:
    """Every answer forbids framing and foreign scripts; unknown paths say "Nicht gefunden"."""
    response = await anonymous.get("/no/such/page")
    assert response.status_code == 404
    assert "Nicht gefunden" in response.text
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert response.headers["x-frame-options"] == "DENY"
