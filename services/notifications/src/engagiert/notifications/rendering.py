"""Renders message templates (kept as files beside this module): plain text and HTML, per kind and language.

Each kind has ``templates/<lang>/<kind>.txt`` (with a ``subject`` block) and
``templates/<lang>/<kind>.html``; both extend the language's ``_base``. HTML is rendered with
autoescape on, so a parameter or a branding value can never inject markup.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2

from engagiert.notifications.domain import DEFAULT_LANGUAGE, LANGUAGES, TEMPLATE_NAMES, RenderedMessage

TEMPLATE_DIR = Path(__file__).parent / "templates"


class UnknownTemplate(LookupError):
    """No template of that name exists."""


class Renderer:
    """Renders a kind of message in a language with parameters, member names and branding."""

    def __init__(self, directory: Path = TEMPLATE_DIR) -> None:
        loader = jinja2.FileSystemLoader(str(directory))
        self._text = jinja2.Environment(loader=loader, autoescape=False, keep_trailing_newline=True)  # noqa: S701  (plain text)
        self._html = jinja2.Environment(loader=loader, autoescape=True)

    def render(
        self,
        name: str,
        *,
        language: str,
        params: dict[str, Any],
        member: dict[str, Any],
        branding: dict[str, Any],
    ) -> RenderedMessage:
        """Return subject, text and HTML of template ``name`` (German when ``language`` is not offered)."""
        if name not in TEMPLATE_NAMES:
            raise UnknownTemplate(name)
        lang = language if language in LANGUAGES else DEFAULT_LANGUAGE
        context = {"params": params, "member": member, "branding": branding}
        text_template = self._text.get_template(f"{lang}/{name}.txt")
        subject = "".join(text_template.blocks["subject"](text_template.new_context(context))).strip()
        subject = " ".join(subject.split())  # a header holds one line
        text = text_template.render(context).strip() + "\n"
        html = self._html.get_template(f"{lang}/{name}.html").render({**context, "subject": subject})
        return RenderedMessage(subject=subject, text=text, html=html)
