"""Rules of segment definitions: names, body shapes, the reference graph and the search cursor."""

from __future__ import annotations

import base64
import json

import pytest
from segmentation import errors
from segmentation.engine.segments import dependents, reads_company_fields, referenced_segment_ids
from segmentation.segments.search import decode_cursor, encode_cursor
from segmentation.segments.service import new_segment_id
from segmentation.vocabulary import name_key

TRIAL = {"field": "custom_attributes.plan", "op": "eq", "value": "free trial"}


def test_segment_ids_are_prefixed_alphanumeric_and_distinct() -> None:
    ids = {new_segment_id() for _ in range(200)}
    assert len(ids) == 200
    for sid in ids:
        assert sid.startswith("seg_") and sid[4:].isalnum() and len(sid) > 8


def test_name_key_ignores_case_and_surrounding_blanks() -> None:
    assert name_key("  Trial Users ") == name_key("trial users")
    assert name_key("Trial users") != name_key("Trial user")


NESTED = {
    "and": [
        {"field": "segment", "op": "in_segment", "value": "seg_a"},
        {"or": [{"not": {"field": "segment", "op": "not_in_segment", "value": "seg_b"}}, TRIAL]},
    ]
}


def test_references_are_found_at_any_depth() -> None:
    assert referenced_segment_ids(NESTED) == {"seg_a", "seg_b"}
    assert referenced_segment_ids(TRIAL) == set()


def test_dependents_are_the_segments_that_refer_directly() -> None:
    filters = {
        "seg_x": NESTED,
        "seg_a": TRIAL,
        "seg_b": {"field": "segment", "op": "in_segment", "value": "seg_a"},
    }
    assert dependents("seg_a", filters) == ["seg_b", "seg_x"]
    assert dependents("seg_x", filters) == []


def test_company_fields_are_found_through_references() -> None:
    company = {"field": "company.plan", "op": "eq", "value": "pro"}
    via = {"field": "segment", "op": "in_segment", "value": "seg_c"}
    assert reads_company_fields({"not": company}, {})
    assert reads_company_fields({"and": [TRIAL, via]}, {"seg_c": company})
    assert not reads_company_fields({"and": [TRIAL, via]}, {"seg_c": TRIAL})


def test_company_field_search_terminates_on_a_reference_cycle() -> None:
    a = {"field": "segment", "op": "in_segment", "value": "seg_b"}
    b = {"field": "segment", "op": "in_segment", "value": "seg_a"}
    assert not reads_company_fields(a, {"seg_a": a, "seg_b": b})


def test_a_cursor_round_trips_for_the_same_search() -> None:
    cursor = encode_cursor("users", TRIAL, "u-42")
    assert decode_cursor(cursor, "users", TRIAL) == "u-42"


@pytest.mark.parametrize(
    ("cursor", "target", "filter_"),
    [
        ("not base64 at all!!", "users", TRIAL),
        (base64.urlsafe_b64encode(b"[1,2]").decode(), "users", TRIAL),
        (base64.urlsafe_b64encode(json.dumps({"k": "u-1"}).encode()).decode(), "users", TRIAL),
        (encode_cursor("users", TRIAL, "u-1"), "companies", TRIAL),
        (encode_cursor("users", TRIAL, "u-1"), "users", {"field": "email", "op": "exists"}),
        (encode_cursor("users", TRIAL, "u-1")[:-3] + "AAA", "users", TRIAL),
    ],
    # A signed cursor differs from process to process: ids of their own keep the test's name stable
    # (pytest-xdist's workers must collect the same names).
    ids=["not-base64", "not-an-object", "unsigned", "other-target", "other-filter", "bad-signature"],
)
def test_a_cursor_not_made_for_this_search_is_invalid(cursor: str, target: str, filter_: object) -> None:
    with pytest.raises(errors.Malformed) as exc:
        decode_cursor(cursor, target, filter_)
    assert exc.value.code == "invalid_cursor" and exc.value.status == 400
