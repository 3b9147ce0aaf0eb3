"""Rules of segment definitions: names, body shapes and the reference graph."""

from __future__ import annotations

from segmentation.engine.segments import dependents, reads_company_fields, referenced_segment_ids
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
