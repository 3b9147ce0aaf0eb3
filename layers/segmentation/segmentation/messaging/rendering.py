"""A message's subject and body rendered for one user: what the sender delivers and what
POST /v1/messages/preview shows, with the same context and limits."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from segmentation.messaging import render_context, templates
from segmentation.people import evaluable
from segmentation.storage import companies as company_store


@dataclass(frozen=True)
class Rendered:
    subject: str | None  # one line
    text: str
    html: str  # the text's HTML part: every value escaped, lines kept


def render(
    subject: str | None, body: str, user: Mapping[str, Any], *, unsubscribe_url: str | None = None
) -> Rendered:
    """Raises templates.TemplateFailed, naming the field, when a template hits its budget or an
    error. Each of the three renders has a budget of its own. `unsubscribe_url`: what
    `{{ unsubscribe_url }}` shows (an email's link; None in-app)."""
    reads_company = templates.uses_variable(body, "company") or (
        subject is not None and templates.uses_variable(subject, "company")
    )
    context = render_context.context(user, _first_company(user) if reads_company else None, unsubscribe_url)
    rendered_subject = None
    if subject is not None:
        rendered_subject = " ".join(_render(subject, "subject", context).split())  # one line
    text = _render(body, "body", context)
    html = _render(body, "body", context, html=True).replace("\n", "<br>\n")
    return Rendered(rendered_subject, text, f"<html><body>{html}</body></html>")


def _render(source: str, field: str, context: dict[str, Any], *, html: bool = False) -> str:
    try:
        return templates.render(source, context, html=html)
    except templates.TemplateFailed as failed:
        failed.field = field
        raise


def _first_company(user: Mapping[str, Any]) -> dict[str, Any] | None:
    """The user's first company as templates see it (with its user_count), or None."""
    ids = user.get("company_ids") or []
    item = company_store.get(str(ids[0])) if ids else None
    return evaluable.companies([item])[0] if item else None
