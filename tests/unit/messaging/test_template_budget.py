"""Every render has a work budget (issue 17): each dimension is counted and enforced, in units,
never in time; ordinary templates render exactly as python-liquid renders them."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from liquid import Environment
from segmentation import errors
from segmentation.messaging import templates
from segmentation.messaging.template_budget import (
    CHARACTERS,
    INTEGER,
    ITEMS,
    ITERATIONS,
    LIST,
    STEPS,
    TEXT,
    Budget,
    BudgetExceeded,
    Limit,
)

from infra.local.seed_messages import WELCOME

ROOT = Path(__file__).resolve().parents[3]
ISSUE = '{% for i in (1..10000) %}{% assign r = (1..9999) | join: "," %}{% endfor %}'
# The issue's template with its inner bound in a variable: no static check can see it.
ISSUE_DYNAMIC = (
    '{% assign n = 9999 %}{% for i in (1..10000) %}{% assign r = (1..n) | join: "," %}{% endfor %}'
)
USER = {"user": {"name": "Ada", "email": "ada@example.com", "segments": ["active", "trial"]}, "company": None}


def over_budget(source: str, context: dict[str, Any] | None = None) -> tuple[Limit | None, Budget]:
    """Render; return the limit the budget stopped it at (None: a limit of python-liquid's own)."""
    budget = Budget()
    with pytest.raises(templates.TemplateFailed) as failed:
        templates.render(source, context if context is not None else USER, budget=budget)
    assert failed.value.code == "template_budget" and failed.value.reason == "template_budget"
    cause = failed.value.__cause__
    return (cause.limit if isinstance(cause, BudgetExceeded) else None), budget


def python_liquid_with_its_own_limits() -> Environment:
    """The environment this service had before the budget: python-liquid's class-level limits."""

    class Limited(Environment):
        loop_iteration_limit = 10_000
        output_stream_limit = 200_000
        context_depth_limit = 20
        local_namespace_limit = 100_000

    return Limited()


# --- The issue's template ---------------------------------------------------------------------------


def test_the_issues_template_is_refused_at_creation_naming_the_field() -> None:
    with pytest.raises(errors.Invalid) as refused:
        templates.check(ISSUE, "body")
    assert refused.value.code == "template_budget"
    assert [d["path"] for d in refused.value.details or []] == ["body"]
    assert "(1..9999)" in refused.value.message and "10,000 times" in refused.value.message


@pytest.mark.parametrize("source", [ISSUE, ISSUE_DYNAMIC])
def test_the_issues_template_stops_within_its_budget(source: str) -> None:
    limit, budget = over_budget(source)
    assert limit is ITEMS
    # It stopped after a few of its 10,000 joins: the work done is the budget plus one join.
    assert budget.items <= ITEMS.maximum + 2 * 9_999
    assert budget.iterations == 10_000  # the loop was charged its length when it started
    assert budget.characters <= CHARACTERS.maximum and budget.steps <= STEPS.maximum


# --- Each dimension, on templates python-liquid's own limits let through --------------------------


def test_loop_iterations_are_counted_across_loops_not_per_nest() -> None:
    source = "{% for i in (1..6000) %}{% endfor %}{% for i in (1..6000) %}{% endfor %}"
    python_liquid_with_its_own_limits().from_string(source).render()  # each nest is under its limit
    templates.check(source, "body")
    limit, budget = over_budget(source)
    assert limit is ITERATIONS and budget.iterations == 12_000


def test_nested_loops_count_every_inner_iteration() -> None:
    limit, budget = over_budget("{% for i in (1..100) %}{% for j in (1..100) %}{% endfor %}{% endfor %}")
    assert limit is ITERATIONS and budget.iterations == 100 + 100 * 100


def test_steps_bound_repeated_work_without_any_loop() -> None:
    # `when` renders its block once per matching value: 400 x 400 renders of the inner case.
    values = ", ".join(["1"] * 400)
    inner = f"{{% case 1 %}}{{% when {values} %}}x{{% endcase %}}"
    source = f"{{% case 1 %}}{{% when {values} %}}{inner}{{% endcase %}}"
    assert len(python_liquid_with_its_own_limits().from_string(source).render()) == 400 * 400
    limit, budget = over_budget(source)
    assert limit is STEPS and budget.steps <= STEPS.maximum + 1_000


def test_steps_weigh_a_tag_by_its_expressions() -> None:
    chain = " or ".join(["i == 0"] * 200)
    limit, budget = over_budget(f"{{% for i in (1..1000) %}}{{% if {chain} %}}{{% endif %}}{{% endfor %}}")
    assert limit is STEPS
    assert budget.iterations == 1_000 and budget.steps <= STEPS.maximum + 1_000


def test_items_through_filters_are_counted_per_render() -> None:
    source = "{% for i in (1..50) %}{{ user.segments | concat: user.tags | size }}{% endfor %}"
    limit, budget = over_budget(source, {"user": {"segments": ["a"] * 500, "tags": ["b"] * 500}})
    assert limit is ITEMS and budget.items <= ITEMS.maximum + 2_000


def test_characters_handled_by_filters_are_counted() -> None:
    big = "x" * 50_000
    limit, budget = over_budget(
        "{% for i in (1..100) %}{% assign u = big | upcase %}{% endfor %}", {"big": big}
    )
    assert limit is CHARACTERS and budget.characters <= CHARACTERS.maximum + 2 * len(big)


def test_a_long_text_read_again_and_again_is_counted() -> None:
    # `contains` scans the whole text on every iteration; reading it is what is charged.
    limit, _ = over_budget(
        "{% for i in (1..10000) %}{% if big contains 'zz' %}{% endif %}{% endfor %}", {"big": "x" * 150_000}
    )
    assert limit is CHARACTERS


def test_output_is_counted_including_captures() -> None:
    source = "{% for i in (1..100) %}{% capture c %}{{ chunk }}{% endcapture %}{% endfor %}"
    limit, _ = over_budget(source, {"chunk": "y" * 20_000})
    assert limit is CHARACTERS


def test_output_size_is_bounded() -> None:
    limit, budget = over_budget("{% for i in (1..30) %}{{ chunk }}{% endfor %}", {"chunk": "y" * 10_000})
    assert limit is None  # python-liquid's output stream limit, reported as the budget
    assert budget.characters <= 2 * TEXT.maximum + 20_000


@pytest.mark.parametrize(
    ("source", "limit"),
    [
        ("{{ big | append: big | size }}", TEXT),
        ("{{ big | prepend: big | size }}", TEXT),
        ("{{ short | replace: 'x', short | size }}", TEXT),
        ("{{ short | split: '' | join: short | size }}", TEXT),
        ("{{ many | concat: many | size }}", LIST),
        ("{{ big_number | times: big_number }}", INTEGER),
    ],
)
def test_intermediate_values_are_bounded_before_they_are_built(source: str, limit: Limit) -> None:
    # Each builds one value too big while the totals stay low: the size of a value is its own limit.
    context = {"big": "b" * 120_000, "short": "x" * 1_000, "many": list(range(6_000)), "big_number": 2**200}
    found, budget = over_budget(source, context)
    assert found is limit
    assert budget.characters < CHARACTERS.maximum and budget.items < ITEMS.maximum


# A range of a billion items costs nothing to make, but `contains` scans it and `reversed` lists it
# before any loop limit is looked at: ranges are bounded where they are made, in every position.
HUGE = "{% assign n = 1000000000 %}"


@pytest.mark.parametrize(
    "tail",
    [
        "{% for i in (1..n) %}{% endfor %}",
        "{% for i in (1..n) reversed %}{% endfor %}",
        "{% for i in (1..n) offset: 999999990 %}{% endfor %}",
        "{% for i in (1..n) limit: 1 %}{% endfor %}",
        "{% tablerow i in (1..n) %}{% endtablerow %}",
        "{% if (1..n) contains 'x' %}{% endif %}",
        "{% if false %}{% elsif (1..n) contains 'x' %}{% endif %}",
        "{% unless (1..n) contains 'x' %}{% endunless %}",
        "{% case 'x' %}{% when (1..n) %}{% endcase %}",
        "{% case (1..n) %}{% when 1 %}{% endcase %}",
        "{% assign r = (1..n) %}",
        "{{ (1..n) }}",
        "{% echo (1..n) %}",
        "{{ (1..2) | concat: (1..n) }}",
        "{% liquid\nassign r = (1..n)\n%}",
        "{% if true %}{% unless false %}{% assign r = ((1..n)..2) %}{% endunless %}{% endif %}",
    ],
)
def test_a_huge_range_is_refused_wherever_it_is_made(tail: str) -> None:
    templates.check(HUGE + tail, "body")  # a variable bound: only rendering can tell
    limit, budget = over_budget(HUGE + tail)
    assert limit is LIST
    assert budget.items <= 2 and budget.iterations == 0  # nothing of it was charged: it was never made


def test_uniq_runs_in_linear_time_with_the_same_result() -> None:
    plain = Environment()
    for source in ("{{ l | uniq | join: ',' }}", "{{ l | uniq: 'k' | map: 'k' | join: ',' }}"):
        data = {"l": [3, 1, 3, 2, 1, 1.0, True, "1", "a", "a"]}
        if "'k'" in source:
            data = {"l": [{"k": 1}, {"k": 2}, {"k": 1}, {"j": 0}, {"k": 3}, {"j": 5}]}
        assert templates.render(source, data) == plain.from_string(source).render(**data)
    budget = Budget()
    # 10,000 distinct texts: the quadratic way compares 50 million pairs (a second or more).
    distinct = {"l": [str(i) for i in range(10_000)]}
    assert templates.render("{{ l | uniq | size }}", distinct, budget=budget) == "10000"
    assert budget.items == 4 * 10_000  # read, into uniq, out of it, into size


def test_uniq_of_unhashable_items_is_charged_its_quadratic_work() -> None:
    limit, budget = over_budget("{{ l | uniq | size }}", {"l": [{"k": i} for i in range(400)]})
    assert limit is ITEMS and budget.items >= 400 * 399 // 2


@pytest.mark.parametrize(
    ("source", "where"),
    [
        ("{% for i in (1..100000) %}{% endfor %}", "(1..100000) has 100,000 items"),
        ("{% for i in (1..200) %}{% for j in (1..200) %}{% endfor %}{% endfor %}", "40,000 iterations"),
        ("{% for i in (1..10) %}{% for j in (1..1000) limit: 5 %}{% endfor %}{% endfor %}", None),
        ("{% for i in (1..5000) %}{% for j in (1..5) %}{% endfor %}{% endfor %}", "25,000 iterations"),
        ("{% for i in (1..100) %}{{ (1..1000) | join }}{% endfor %}", "made 100 times"),
        ("{% for i in (1..100) %}{% else %}{{ (1..1000) | join }}{% endfor %}", None),
        ("{% for i in user.segments %}{{ (1..5000) | join }}{% endfor %}", None),
        ("{% if user.vip %}{% for i in (1..10000) %}{% endfor %}{% endif %}", None),
    ],
)
def test_what_a_template_shows_it_will_spend_is_checked_at_creation(source: str, where: str | None) -> None:
    if where is None:
        templates.check(source, "subject")
        return
    with pytest.raises(errors.Invalid) as refused:
        templates.check(source, "subject")
    assert refused.value.code == "template_budget" and where in refused.value.message
    assert refused.value.details == [{"path": "subject", "message": refused.value.details[0]["message"]}]


def test_a_template_too_deep_to_analyse_is_a_422_not_a_crash() -> None:
    source = "{% if " + " or ".join(["a"] * 2000) + " %}x{% endif %}"
    with pytest.raises(errors.Invalid):
        templates.check(source, "body")
    with pytest.raises(templates.TemplateFailed) as failed:
        templates.render(source, {})
    assert failed.value.code == "template_error"


def test_a_filter_that_fails_in_python_is_a_template_error() -> None:
    # base64_decode of bytes that are not UTF-8 raised a bare UnicodeDecodeError.
    with pytest.raises(templates.TemplateFailed) as failed:
        templates.render("{{ 'pw==' | base64_decode }}", {})
    assert failed.value.code == "template_error" and failed.value.reason.startswith("template_error: ")


# --- Ordinary templates: the same output, a small part of the budget -------------------------------


def _readme_templates() -> list[str]:
    """The subjects and bodies of the README's curl examples."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    found = re.findall(r'"(?:subject|body)": ("(?:[^"\\]|\\.)*")', text)
    return [json.loads(literal) for literal in found]


ORDINARY = [
    *_readme_templates(),
    WELCOME["subject"],
    WELCOME["body"],
    "Hi {{ user.name | default: 'there' }}, {{ user.email | split: '@' | last | upcase }}",
    "{% for s in user.segments %}{{ forloop.index }}. {{ s | capitalize }}{% unless forloop.last %}, "
    "{% endunless %}{% else %}none{% endfor %}",
    "{% if user.name == 'Ada' %}A{% elsif user.name %}B{% else %}C{% endif %}"
    "{% case user.segments.size %}{% when 1, 2 %}few{% else %}many{% endcase %}",
    "{% capture who %}{{ user.name }} <{{ user.email }}>{% endcapture %}{{ who | escape }} {{ who | size }}",
    "{% assign n = user.segments | size %}{{ n | times: 3 | plus: 1 }} {{ 7 | divided_by: 2.0 | round: 1 }}",
    "{%- for i in (1..3) -%}{{ i }} {%- cycle 'a', 'b' -%}{%- endfor -%}\n{% increment c %}{% increment c %}",
    "{% tablerow s in user.segments cols: 2 %}{{ s }}{% endtablerow %}",
    "{% liquid\nfor s in user.segments\necho s | append: ';'\nendfor %}{% comment %}x{% endcomment %}",
    "{% raw %}{{ not rendered }}{% endraw %} {{ user.segments | join: ', ' | truncate: 8 }}",
    "<p>{{ user.name }} & {{ '<b>' }}</p>\n{{ user.missing.deep | default: '-' }}",
]


@pytest.mark.parametrize("source", ORDINARY)
@pytest.mark.parametrize("html", [False, True])
def test_ordinary_templates_render_as_python_liquid_renders_them(source: str, html: bool) -> None:
    templates.check(source, "body")
    budget = Budget()
    rendered = templates.render(source, USER, html=html, budget=budget)
    assert rendered == Environment(autoescape=html).from_string(source).render(**USER)
    for limit in (ITERATIONS, STEPS, ITEMS, CHARACTERS):
        assert getattr(budget, limit.name) < limit.maximum // 100, limit.name


def test_the_readme_and_seed_templates_are_all_in_the_corpus() -> None:
    assert len(_readme_templates()) >= 4
    assert "Hi {{ user.name }}" in ORDINARY and WELCOME["body"] in ORDINARY
