"""Liquid templates of message subjects and bodies: checked at creation, rendered by the sender.

Rendering runs no code: the context is plain JSON values (dicts, lists, strings, numbers,
booleans, None), which Liquid reads by key only, never by attribute; there is no loader, so no
`include` or `render`; loops, output size and nesting are bounded by the environment's limits,
so a hostile template ends in a `TemplateFailed`, never a hang.
"""

from __future__ import annotations

from functools import cache, lru_cache
from typing import TYPE_CHECKING, Any

from segmentation import errors

if TYPE_CHECKING:
    from liquid import BoundTemplate, Environment

MAX_TEMPLATE_LENGTH = 20_000
_FORBIDDEN_TAGS = frozenset({"include", "render"})


@cache
def _environments() -> tuple[Environment, Environment]:
    """The plain and the HTML-escaping environment. python-liquid is imported here, on the first
    template checked or rendered: most routes and functions never need it."""
    from liquid import Environment

    class _MessageEnvironment(Environment):
        loop_iteration_limit = 10_000
        output_stream_limit = 200_000  # characters of rendered output
        context_depth_limit = 20
        local_namespace_limit = 100_000  # bytes held by {% assign %} / {% capture %}

    class _HtmlEnvironment(_MessageEnvironment):
        """The same, escaping every value it outputs: the HTML part of an email."""

    return _MessageEnvironment(), _HtmlEnvironment(autoescape=True)


def _liquid_error() -> type[Exception]:
    from liquid.exceptions import LiquidError

    return LiquidError


class TemplateFailed(Exception):
    """A template hit a limit or an error while rendering."""


def check(source: str, field: str) -> None:
    """Raise errors.Invalid naming `field` when the template does not parse or uses what we
    do not offer (unknown filters, include/render)."""
    if len(source) > MAX_TEMPLATE_LENGTH:
        raise errors.Invalid(
            f"The {field} template is longer than {MAX_TEMPLATE_LENGTH} characters.",
            [{"path": field, "message": f"must be at most {MAX_TEMPLATE_LENGTH} characters"}],
        )
    try:
        template = _parse(source)
        analysis = template.analyze(include_partials=False)
    except _liquid_error() as exc:
        raise errors.Invalid(
            f"The {field} template does not parse: {_first_line(exc)}",
            [{"path": field, "message": _first_line(exc)}],
        ) from exc
    unknown = sorted(set(analysis.filters) - set(_environments()[0].filters))
    forbidden = sorted(set(analysis.tags) & _FORBIDDEN_TAGS)
    if unknown or forbidden:
        what = [f"unknown filter '{name}'" for name in unknown] + [
            f"tag '{name}' is not allowed" for name in forbidden
        ]
        raise errors.Invalid(
            f"The {field} template cannot be used: {', '.join(what)}.",
            [{"path": field, "message": ", ".join(what)}],
        )


def uses_variable(source: str, name: str) -> bool:
    """Whether the template reads the global `name` (so the sender loads a company only if needed)."""
    return name in _parse(source).global_variables(include_partials=False)


def render(source: str, context: dict[str, Any], *, html: bool = False) -> str:
    try:
        template = _parse_html(source) if html else _parse(source)
        return template.render(**context)
    except _liquid_error() as exc:
        raise TemplateFailed(_first_line(exc)) from exc


@lru_cache(maxsize=512)
def _parse(source: str) -> BoundTemplate:
    return _environments()[0].from_string(source)


@lru_cache(maxsize=512)
def _parse_html(source: str) -> BoundTemplate:
    return _environments()[1].from_string(source)


def _first_line(exc: Exception) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
