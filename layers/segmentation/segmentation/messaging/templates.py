"""Liquid templates of message subjects and bodies: checked at creation, rendered by the sender.

Rendering runs no code: the context is plain JSON values (dicts, lists, strings, numbers,
booleans, None), which Liquid reads by key only, never by attribute; there is no loader, so no
`include` or `render`. Every render has a work budget (template_budget.py, charged by
liquid_sandbox.py): any template renders in well under a second or ends in a TemplateFailed
whose reason is `template_budget`, never a hang or a MemoryError. A template sure to exceed the
budget is refused at creation already.
"""

from __future__ import annotations

from typing import Any

from segmentation import errors
from segmentation.messaging import liquid_sandbox
from segmentation.messaging.template_budget import Budget, BudgetExceeded

MAX_TEMPLATE_LENGTH = 20_000
_FORBIDDEN_TAGS = frozenset({"include", "render"})
BUDGET_CODE = "template_budget"


class TemplateFailed(Exception):
    """A template hit its budget or an error while rendering. `code` is `template_budget` or
    `template_error`; `reason` is what a failed delivery records; `field` (subject, body) is
    set by whoever knows which template it was."""

    def __init__(self, message: str, *, code: str = "template_error", field: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.field = field

    @property
    def reason(self) -> str:
        return self.code if self.code == BUDGET_CODE else f"{self.code}: {self}"


def check(source: str, field: str) -> None:
    """Raise errors.Invalid naming `field` when the template does not parse, uses what we do
    not offer (unknown filters, include/render), or is sure to exceed its budget."""
    if len(source) > MAX_TEMPLATE_LENGTH:
        raise errors.Invalid(
            f"The {field} template is longer than {MAX_TEMPLATE_LENGTH} characters.",
            [{"path": field, "message": f"must be at most {MAX_TEMPLATE_LENGTH} characters"}],
        )
    liquid_error, _ = liquid_sandbox.liquid_errors()
    try:
        template = liquid_sandbox.parse(source)
        analysis = template.analyze(include_partials=False)
        overrun = liquid_sandbox.static_overrun(template)
    except (liquid_error, RecursionError) as exc:
        raise errors.Invalid(
            f"The {field} template does not parse: {_first_line(exc)}",
            [{"path": field, "message": _first_line(exc)}],
        ) from exc
    unknown = sorted(set(analysis.filters) - liquid_sandbox.filter_names())
    forbidden = sorted(set(analysis.tags) & _FORBIDDEN_TAGS)
    if unknown or forbidden:
        what = [f"unknown filter '{name}'" for name in unknown] + [
            f"tag '{name}' is not allowed" for name in forbidden
        ]
        raise errors.Invalid(
            f"The {field} template cannot be used: {', '.join(what)}.",
            [{"path": field, "message": ", ".join(what)}],
        )
    if overrun:
        raise errors.Invalid(
            f"The {field} template would exceed its render budget: {overrun}.",
            [{"path": field, "message": overrun}],
            code=BUDGET_CODE,
        )


def uses_variable(source: str, name: str) -> bool:
    """Whether the template reads the global `name` (so the sender loads a company only if needed)."""
    return name in liquid_sandbox.parse(source).global_variables(include_partials=False)


def render(source: str, context: dict[str, Any], *, html: bool = False, budget: Budget | None = None) -> str:
    """One render with a budget of its own (or `budget`, to read what it spent)."""
    liquid_error, resource_limit_error = liquid_sandbox.liquid_errors()
    try:
        return liquid_sandbox.render(source, context, html=html, budget=budget or Budget())
    except BudgetExceeded as exc:
        raise TemplateFailed(f"the render budget is spent: {exc}", code=BUDGET_CODE) from exc
    except resource_limit_error as exc:  # python-liquid's own limits, behind the budget's
        raise TemplateFailed(f"the render budget is spent: {_first_line(exc)}", code=BUDGET_CODE) from exc
    except (liquid_error, RecursionError) as exc:
        raise TemplateFailed(_first_line(exc)) from exc


def reset_cache() -> None:
    """Forget parsed templates (they are cached per process): for tests and the bench."""
    liquid_sandbox.reset_cache()


def _first_line(exc: Exception) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
