"""validate_filter: every kind of bad filter is a 422 naming the bad node by its path."""

from __future__ import annotations

from typing import Any

import pytest
from engine_helpers import ATTRIBUTES, cond
from segmentation.engine import SegmentDef, validate_filter
from segmentation.engine.model import And, Condition
from segmentation.errors import Invalid

COMPANY_SEGMENT = SegmentDef("big", "Big", "companies", cond("size", "gt", 100))
TRIAL = SegmentDef("trial", "Trial", "users", cond("custom_attributes.plan", "eq", "free trial"))
SEGMENTS = {s.id: s for s in (COMPANY_SEGMENT, TRIAL)}


def problems(raw: Any, *, target: str = "users", segments=None, segment_id=None) -> list[dict[str, str]]:
    with pytest.raises(Invalid) as caught:
        validate_filter(
            raw, target=target, attributes=ATTRIBUTES, segments=segments or SEGMENTS, segment_id=segment_id
        )
    assert caught.value.code == "invalid_filter"
    assert caught.value.status == 422
    assert caught.value.details
    return caught.value.details


def first(raw: Any, **kwargs: Any) -> tuple[str, str]:
    detail = problems(raw, **kwargs)[0]
    return detail["path"], detail["message"]


def nest(levels: int) -> dict[str, Any]:
    node: dict[str, Any] = cond("email", "exists")
    for _ in range(levels):
        node = {"not": node}
    return node


def test_a_valid_filter_returns_its_tree():
    tree = validate_filter(
        {"and": [cond("email", "eq", "A@B.C"), cond("segment", "in_segment", "trial")]},
        target="users",
        attributes=ATTRIBUTES,
        segments=SEGMENTS,
    )
    assert isinstance(tree, And)
    assert tree.items[0] == Condition(tree.items[0].field, "eq", "a@b.c")


def test_op_not_fitting_the_type_names_the_op_and_the_right_ones():
    path, message = first({"and": [cond("email", "exists"), cond("email", "gt", 3)]})
    assert path == "filter.and[1].op"
    assert "'gt'" in message and "email" in message and "starts_with" in message


def test_unknown_field_lists_the_known_ones():
    path, message = first({"or": [cond("emial", "eq", "x")]})
    assert path == "filter.or[0].field"
    assert "emial" in message and "email" in message and "custom_attributes.<name>" in message


def test_unknown_custom_attribute_is_invalid():
    path, message = first(cond("custom_attributes.colour", "eq", "red"))
    assert path == "filter.field"
    assert "colour" in message and "plan" in message


def test_custom_attribute_types_come_from_the_registry():
    path, message = first(cond("custom_attributes.plan", "gt", 3))
    assert path == "filter.op"
    assert "string field" in message
    validate_filter(
        cond("custom_attributes.photos_uploaded", "gt", 3), target="users", attributes=ATTRIBUTES, segments={}
    )


def test_company_fields_only_in_user_filters():
    assert first(cond("company.plan", "eq", "pro"), target="companies")[0] == "filter.field"
    assert first(cond("company.colour", "eq", "x"))[0] == "filter.field"
    assert first(cond("company.custom_attributes.nope", "eq", "x"))[0] == "filter.field"
    assert first(cond("session_count", "gt", 1), target="companies")[0] == "filter.field"


@pytest.mark.parametrize(
    ("condition", "why"),
    [
        (cond("email", "eq", 3), "a string"),
        (cond("email", "eq"), "needs a value"),
        (cond("email", "in", []), "non-empty list"),
        (cond("email", "in", "ada"), "non-empty list"),
        (cond("email", "in", ["a", 1]), "non-empty list"),
        (cond("session_count", "gt", "3"), "number"),
        (cond("session_count", "gt", True), "number"),
        (cond("session_count", "eq", float("inf")), "finite number"),
        (cond("email", "exists", "yes"), "takes no value"),
        (cond("unsubscribed_from_emails", "is_true", True), "takes no value"),
        (cond("signed_up_at", "less_than_days_ago", -1), "from 0"),
        (cond("signed_up_at", "less_than_days_ago", 100001), "from 0"),
        (cond("signed_up_at", "less_than_days_ago", "3"), "number of days"),
        (cond("signed_up_at", "exactly_days_ago", 1.5), "whole number"),
        (cond("signed_up_at", "before", "yesterday"), "ISO date"),
        (cond("signed_up_at", "before", "2026-11-01T09:30:00"), "ISO date"),  # no offset
        (cond("signed_up_at", "on", "2026-13-01"), "ISO date"),
        (cond("signed_up_at", "after", True), "ISO date"),
        (cond("segment", "in_segment", 7), "segment id"),
    ],
)
def test_wrong_values_point_at_the_value(condition, why):
    path, message = first({"and": [cond("email", "exists"), {"not": condition}]})
    assert path == "filter.and[1].not.value"
    assert why in message


def test_a_value_of_null_counts_as_no_value():
    validate_filter(
        {"field": "email", "op": "exists", "value": None}, target="users", attributes=ATTRIBUTES, segments={}
    )


def test_fractional_days_and_whole_exactly_days():
    for raw in (
        cond("signed_up_at", "less_than_days_ago", 0.5),
        cond("signed_up_at", "exactly_days_ago", 2.0),
        cond("signed_up_at", "more_than_days_from_now", 0),
    ):
        validate_filter(raw, target="users", attributes=ATTRIBUTES, segments={})


@pytest.mark.parametrize(
    ("raw", "path"),
    [
        ("email", "filter"),
        ([cond("email", "exists")], "filter"),
        ({}, "filter"),
        ({"xor": [cond("email", "exists")]}, "filter"),
        ({"and": []}, "filter.and"),
        ({"or": []}, "filter.or"),
        ({"and": cond("email", "exists")}, "filter.and"),
        ({"and": [cond("email", "exists")], "or": []}, "filter.or"),
        ({"not": cond("email", "exists"), "extra": 1}, "filter.extra"),
        ({"field": "email", "op": "exists", "extra": 1}, "filter.extra"),
        ({"field": 3, "op": "exists"}, "filter.field"),
        ({"field": "email", "op": 3}, "filter.op"),
        ({"field": "email"}, "filter.op"),
        ({"and": [cond("email", "exists"), 5]}, "filter.and[1]"),
    ],
)
def test_malformed_structure(raw, path):
    assert first(raw)[0] == path


def test_nesting_six_combinators_is_fine_and_seven_is_not():
    validate_filter(nest(6), target="users", attributes=ATTRIBUTES, segments={})
    path, message = first(nest(7))
    assert path == "filter" + ".not" * 6
    assert "6" in message


def test_at_most_100_conditions():
    validate_filter(
        {"and": [cond("email", "exists")] * 100}, target="users", attributes=ATTRIBUTES, segments={}
    )
    path, message = first({"and": [cond("email", "exists")] * 101})
    assert path == "filter"
    assert "100" in message


def test_several_problems_are_all_reported():
    details = problems({"and": [cond("emial", "eq", "x"), cond("email", "gt", 1)]})
    assert [d["path"] for d in details] == ["filter.and[0].field", "filter.and[1].op"]


def test_missing_segment_and_other_target():
    path, message = first(cond("segment", "in_segment", "nope"))
    assert (path, "nope" in message) == ("filter.value", True)
    path, message = first({"and": [cond("segment", "not_in_segment", "big")]})
    assert path == "filter.and[0].value"
    assert "companies segment" in message
    # The other way round, a company filter may refer to company segments only.
    validate_filter(
        cond("segment", "in_segment", "big"), target="companies", attributes=ATTRIBUTES, segments=SEGMENTS
    )
    assert first(cond("segment", "in_segment", "trial"), target="companies")[0] == "filter.value"


def test_predefined_segments_are_always_known():
    validate_filter(
        cond("segment", "in_segment", "slipping_away"), target="users", attributes=ATTRIBUTES, segments={}
    )


def test_self_reference_is_a_cycle():
    path, message = first(cond("segment", "in_segment", "trial"), segment_id="trial")
    assert path == "filter.value"
    assert "itself" in message


def test_cycles_through_other_segments_at_any_depth():
    chain = {
        "a": SegmentDef("a", "A", "users", cond("segment", "in_segment", "b")),
        "b": SegmentDef("b", "B", "users", {"not": cond("segment", "in_segment", "c")}),
        "c": SegmentDef("c", "C", "users", cond("email", "exists")),
    }
    # Saving c to refer to a closes c -> a -> b -> c.
    path, message = first(
        {"or": [cond("email", "exists"), cond("segment", "in_segment", "a")]}, segments=chain, segment_id="c"
    )
    assert path == "filter.or[1].value"
    assert "cycle" in message and "'c'" in message
    # The same filter on a new segment (or a search) is fine: nothing refers back to it.
    validate_filter(cond("segment", "in_segment", "a"), target="users", attributes=ATTRIBUTES, segments=chain)
    # And an edit that removes the reference is fine too.
    validate_filter(
        cond("email", "exists"), target="users", attributes=ATTRIBUTES, segments=chain, segment_id="a"
    )


def test_the_error_message_names_the_path():
    with pytest.raises(Invalid) as caught:
        validate_filter(cond("email", "gt", 1), target="users", attributes=ATTRIBUTES, segments={})
    assert "filter.op" in caught.value.message


def test_a_tag_condition_names_a_tag_that_exists():
    validate_filter(
        cond("tag", "has_tag", "tag_vip"), target="users", attributes=ATTRIBUTES, segments=SEGMENTS
    )
    path, message = first({"and": [cond("email", "exists"), cond("tag", "not_has_tag", "tag_gone")]})
    assert path == "filter.and[1].value"
    assert "tag_gone" in message


@pytest.mark.parametrize(
    ("raw", "path", "says"),
    [
        (cond("tag", "eq", "tag_vip"), "filter.op", "has_tag"),
        (cond("tag", "has_tag", 3), "filter.value", "tag id"),
        (cond("tag", "has_tag", ""), "filter.value", "tag id"),
        (cond("tag", "has_tag"), "filter.value", "tag id"),
    ],
)
def test_a_tag_condition_takes_has_tag_or_not_has_tag_and_a_tag_id(raw, path, says):
    found_path, message = first(raw)
    assert (found_path, says in message) == (path, True), message


def test_companies_have_no_tags():
    path, message = first(cond("tag", "has_tag", "tag_vip"), target="companies")
    assert path == "filter.field" and "user filters" in message
