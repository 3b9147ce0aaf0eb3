"""Render time of hostile message templates under the render budget (issue 17).

Each template is the body of a message rendered as the sender renders one for a user: subject,
text body and HTML body (`rendering.render`), from a cold cache, so python-liquid's parse is
included. CPU time of this process, median of the repeats. `render_ms` is one render of the body
alone (parse included); `spent` what that render counted before it ended. The budget is counted
in units, never in time: these numbers are what the units cost on this machine.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from segmentation.messaging import render_context, rendering, templates
from segmentation.messaging.template_budget import Budget

SUBJECT = "Hi {{ user.name | default: 'there' }}"
USER: dict[str, Any] = {
    "user_id": "bench",
    "name": "Ada",
    "email": "ada@example.com",
    "session_count": Decimal(3),
    "custom_attributes": {"plan": "trial"},
    "company_ids": [],
    "segments": {"active", "trial"},
}
_WHEN = ", ".join(["1"] * 125)
_DOUBLE = "{% assign s = 'xy' %}" + "{% assign s = s | append: s %}" * 16  # 131,072 characters
_DISTINCT = "{% assign l = (1..6000) | join: ',' | split: ',' %}"
# Hostile templates: each aims at one part of the budget, and would run for seconds or minutes
# (or exhaust memory) without it.
HOSTILE = {
    # The issue's: 10,000 iterations joining a 9,999-item range (minutes of CPU before the budget).
    "issue": '{% for i in (1..10000) %}{% assign r = (1..9999) | join: "," %}{% endfor %}',
    "issue_variable_bound": "{% assign n = 9999 %}"
    '{% for i in (1..10000) %}{% assign r = (1..n) | join: "," %}{% endfor %}',
    "case_when_nest": "{% case 1 %}{% when "
    + ", ".join(["1"] * 3000)
    + " %}{% case 1 %}{% when "
    + ", ".join(["1"] * 3000)
    + " %}x{% endcase %}{% endcase %}",
    "or_chain_in_loop": "{% for i in (1..10000) %}{% if " + " or ".join(["i == 0"] * 400) + " %}{% endif %}"
    "{% endfor %}",
    "huge_range_contains": "{% assign n = 1000000000 %}{% if (1..n) contains 'x' %}y{% endif %}",
    "huge_range_reversed": "{% assign n = 100000000 %}{% for i in (1..n) reversed %}{% endfor %}",
    "long_text_in_loop": _DOUBLE + "{% for i in (1..10000) %}{% if s contains 'zz' %}{% endif %}{% endfor %}",
    "capture_in_loop": _DOUBLE
    + "{% for i in (1..10000) %}{% capture c %}{{ s }}{% endcapture %}{% endfor %}",
    "text_doubling": "{% assign s = 'ab' %}{% for i in (1..60) %}{% assign s = s | append: s %}{% endfor %}",
    "uniq_of_distinct_texts": _DISTINCT + "{{ l | uniq | size }}",
    "slow_filters_in_loop": "{% assign s = '1 1 1 1 ' %}"
    + "{% assign s = s | append: s %}" * 6
    + "{% for i in (1..10000) %}{{ s | strip_html | date: '%Y' | size }}{% endfor %}",
    # Not failing: close to every limit at once, the slowest units found for each (docs/messaging.md).
    "near_every_limit": f"{{% case 1 %}}{{% when {_WHEN} %}}{{% case 1 %}}{{% when {_WHEN} %}}{{% endcase %}}"
    "{% endcase %}"
    "{% for i in (1..8000) %}{% endfor %}"
    "{% assign l = (1..5000) | join: ',' | split: ',' %}{{ l | sort_natural | where: 'x' | size }}"
    "{% assign h = '<a>b</a>' %}" + "{% assign h = h | append: h %}" * 12 + "{{ h | strip_html | size }}",
}


@dataclass(frozen=True)
class TemplateTime:
    name: str
    outcome: str  # rendered, template_budget or template_error
    render_ms: float
    message_ms: float
    spent: dict[str, int]

    def as_json(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "render_ms": round(self.render_ms, 1),
            "message_ms": round(self.message_ms, 1),
            "spent": self.spent,
        }


def run(repeats: int) -> list[TemplateTime]:
    return [_measure(name, body, repeats) for name, body in HOSTILE.items()]


def _measure(name: str, body: str, repeats: int) -> TemplateTime:
    context = render_context.context(USER, None)
    budget = Budget()
    outcome = _outcome(lambda: templates.render(body, context, budget=budget))

    def one_render() -> None:
        templates.render(body, context)

    def one_message() -> None:
        rendering.render(SUBJECT, body, USER)

    return TemplateTime(
        name,
        outcome,
        _median_cpu_ms(one_render, repeats),
        _median_cpu_ms(one_message, repeats),
        budget.spent(),
    )


def _outcome(work: Callable[[], object]) -> str:
    try:
        work()
    except templates.TemplateFailed as failed:
        return failed.code
    return "rendered"


def _median_cpu_ms(work: Callable[[], None], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        templates.reset_cache()  # parse included, as in a fresh sender
        started = time.process_time()
        _outcome(work)
        times.append((time.process_time() - started) * 1000)
    return statistics.median(times)
