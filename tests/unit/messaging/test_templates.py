"""Liquid templates of messages: checked at creation, rendered over plain JSON, bounded."""

from __future__ import annotations

from decimal import Decimal

import pytest
from segmentation import errors
from segmentation.messaging import render_context, templates


def test_default_falls_back_like_intercom() -> None:
    source = "Hi {{ user.name | default: 'there' }}"
    assert templates.render(source, {"user": {"name": None}}) == "Hi there"
    assert templates.render(source, {"user": {"name": "Ada"}}) == "Hi Ada"


@pytest.mark.parametrize("source", ["{{ user.name ", "{% if %}x{% endif %}", "{% for x in %}{% endfor %}"])
def test_a_template_that_does_not_parse_names_its_field(source: str) -> None:
    with pytest.raises(errors.Invalid) as caught:
        templates.check(source, "subject")
    assert caught.value.details == [{"path": "subject", "message": caught.value.details[0]["message"]}]
    assert "subject" in caught.value.message


@pytest.mark.parametrize("source", ["{{ x | no_such_filter }}", "{% include 'other' %}", "{% render 'x' %}"])
def test_unknown_filters_and_file_tags_are_refused_at_creation(source: str) -> None:
    with pytest.raises(errors.Invalid):
        templates.check(source, "body")


def test_loops_are_cut_not_run_forever() -> None:
    with pytest.raises(templates.TemplateFailed):
        templates.render("{% for i in (1..1000) %}{% for j in (1..1000) %}x{% endfor %}{% endfor %}", {})


def test_output_is_bounded() -> None:
    source = "{% for i in (1..1000) %}{{ user.bio }}{% endfor %}"
    with pytest.raises(templates.TemplateFailed):
        templates.render(source, {"user": {"bio": "y" * 1000}})


def test_python_attributes_are_not_reachable() -> None:
    # Only keys of plain dicts resolve: attribute names of the objects give nothing.
    assert (
        templates.render(
            "[{{ user.__class__ }}{{ user.keys }}{{ user.name.upper }}]", {"user": {"name": "a"}}
        )
        == "[]"
    )


def test_html_rendering_escapes_user_values_only() -> None:
    source = "<b>{{ user.name }}</b>"
    assert (
        templates.render(source, {"user": {"name": "<i>x</i>"}}, html=True) == "<b>&lt;i&gt;x&lt;/i&gt;</b>"
    )
    assert templates.render(source, {"user": {"name": "<i>x</i>"}}) == "<b><i>x</i></b>"


def test_the_context_is_the_user_json_and_first_company() -> None:
    user = {
        "user_id": "u1",
        "name": "Ada",
        "signed_up_at": Decimal("1798761600"),
        "session_count": Decimal(3),
        "custom_attributes": {"score": Decimal("1.5"), "trial_ends_at": Decimal(0)},
        "segments": {"b", "a"},
        "company_ids": ["acme", "beta"],
    }
    context = render_context.context(user, {"company_id": "acme", "name": "Acme", "size": Decimal(40)})
    assert context["user"]["signed_up_at"] == "2027-01-01T00:00:00Z"
    assert context["user"]["session_count"] == 3
    assert context["user"]["custom_attributes"] == {"score": 1.5, "trial_ends_at": "1970-01-01T00:00:00Z"}
    assert context["user"]["segments"] == ["a", "b"]
    assert context["company"]["name"] == "Acme" and context["company"]["size"] == 40
    assert templates.render("{{ company.name }} {{ user.custom_attributes.score }}", context) == "Acme 1.5"
    assert render_context.context(user, None)["company"] is None
    assert templates.uses_variable("{{ company.name }}", "company")
    assert not templates.uses_variable("{{ user.name }}", "company")


BOMBS = [
    # The case: each step splits a string into characters and joins them with itself.
    "{% assign s = 'aaaaaaaaaa' %}" + "{% assign s = s | split: '' | join: s %}" * 6 + "{{ s | size }}",
    "{% assign s = 'ab' %}{% for i in (1..40) %}{% assign s = s | append: s %}{% endfor %}{{ s | size }}",
    "{% assign s = 'ab' %}{% for i in (1..40) %}{% assign s = s | replace: '', s %}{% endfor %}"
    "{{ s | size }}",
    "{% assign n = 9 %}{% for i in (1..100) %}{% assign n = n | times: n %}{% endfor %}{{ n }}",
    "{% assign n = 100000000 %}{{ (1..n) | join: ',' | size }}",
    "{% assign n = 100000000 %}{{ (1..n) | sort | first }}",
]


@pytest.mark.parametrize("source", BOMBS)
def test_no_template_can_build_an_unbounded_value(source: str) -> None:
    templates.check(source, "body")  # it parses: only rendering can tell
    with pytest.raises(templates.TemplateFailed):
        templates.render(source, {"user": {}})


def test_bounded_filters_still_work_on_ordinary_values() -> None:
    source = (
        "{{ user.name | split: ' ' | join: '-' | append: '!' | replace: 'a', 'A' | upcase }} "
        "{{ 3 | times: 4 }}"
    )
    assert templates.render(source, {"user": {"name": "ada lovelace"}}) == "ADA-LOVELACE! 12"
