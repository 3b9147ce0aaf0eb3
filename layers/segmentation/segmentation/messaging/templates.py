"""Liquid templates of message subjects and bodies: checked at creation, rendered by the sender.

Rendering runs no code: the context is plain JSON values (dicts, lists, strings, numbers,
booleans, None), which Liquid reads by key only, never by attribute; there is no loader, so no
`include` or `render`; loops, output size and nesting are bounded by the environment's limits.
Those limits do not bound what a filter builds in between (`split: '' | join: ...` repeated
grows a string a thousandfold a step), so every filter is wrapped: its inputs are checked, the
size of what the expanding ones (join, replace, append...) would build is computed before they
run, and every result is checked. A hostile template ends in a `TemplateFailed`, never a hang or
a MemoryError.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from functools import cache, lru_cache
from typing import TYPE_CHECKING, Any

from segmentation import errors

if TYPE_CHECKING:
    from liquid import BoundTemplate, Environment

MAX_TEMPLATE_LENGTH = 20_000
# Bounds of every value a template computes: text, items of a list, and integers.
MAX_TEXT = 200_000
MAX_ITEMS = 10_000
MAX_INTEGER_BITS = 256
_FORBIDDEN_TAGS = frozenset({"include", "render"})


@cache
def _environments() -> tuple[Environment, Environment]:
    """The plain and the HTML-escaping environment. python-liquid is imported here, on the first
    template checked or rendered: most routes and functions never need it."""
    from liquid import Environment

    class _MessageEnvironment(Environment):
        loop_iteration_limit = 10_000
        output_stream_limit = MAX_TEXT  # characters of rendered output
        context_depth_limit = 20
        local_namespace_limit = 100_000  # bytes held by {% assign %} / {% capture %}

        def setup_tags_and_filters(self, *, extra: bool = False) -> None:
            super().setup_tags_and_filters(extra=extra)
            self.filters = {name: _bounded(name, function) for name, function in self.filters.items()}

    class _HtmlEnvironment(_MessageEnvironment):
        """The same, escaping every value it outputs: the HTML part of an email."""

    return _MessageEnvironment(), _HtmlEnvironment(autoescape=True)


def _bounded(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    """A filter that refuses oversized inputs, what it would build too big, and oversized results."""

    @functools.wraps(function)
    def bounded(*args: Any, **kwargs: Any) -> Any:
        for value in (*args, *(v for k, v in kwargs.items() if k not in ("context", "environment"))):
            _check(name, value)
        _check_growth(name, args)
        return _check(name, function(*args, **kwargs))

    return bounded


def _check(name: str, value: Any) -> Any:
    from liquid.exceptions import ResourceLimitError

    if isinstance(value, str) and len(value) > MAX_TEXT:
        raise ResourceLimitError(f"{name}: text longer than {MAX_TEXT} characters", token=None)
    if isinstance(value, list | tuple | range | dict | set) and len(value) > MAX_ITEMS:
        raise ResourceLimitError(f"{name}: more than {MAX_ITEMS} items", token=None)
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > MAX_INTEGER_BITS:
        raise ResourceLimitError(f"{name}: a number too large", token=None)
    return value


def _check_growth(name: str, args: tuple[Any, ...]) -> None:
    """Refuse, before it runs, a filter whose result would pass MAX_TEXT or MAX_ITEMS."""
    from liquid.exceptions import ResourceLimitError

    left, rest = (args[0] if args else None), args[1:]
    size: int | None = None
    if name == "join" and isinstance(left, list | tuple | range):
        separator = str(rest[0]) if rest else " "
        size = sum(len(str(item)) for item in left) + len(separator) * max(0, len(left) - 1)
    elif name in ("replace", "replace_first", "replace_last") and isinstance(left, str) and len(rest) >= 1:
        old, new = str(rest[0]), str(rest[1]) if len(rest) > 1 else ""
        times = (len(left) + 1 if old == "" else left.count(old)) if name == "replace" else 1
        size = len(left) + times * len(new)
    elif name in ("append", "prepend") and rest:
        size = len(str(left)) + len(str(rest[0]))
    elif name == "concat" and rest and isinstance(left, list | tuple) and isinstance(rest[0], list | tuple):
        items = len(left) + len(rest[0])
        if items > MAX_ITEMS:
            raise ResourceLimitError(f"{name}: more than {MAX_ITEMS} items", token=None)
    if size is not None and size > MAX_TEXT:
        raise ResourceLimitError(f"{name}: the result would be longer than {MAX_TEXT} characters", token=None)


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
