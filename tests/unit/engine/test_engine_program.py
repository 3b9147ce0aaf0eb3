"""The generated program's shortcuts give the reference's answers: ranks among sorted cuts
(engine/bounds.py), the result key (engine/results.py), answers shared between segments, a lone
company tested in place, and/or items reordered by cost (engine/costs.py)."""

from __future__ import annotations

from bisect import bisect_right
from decimal import Decimal

from engine_helpers import ATTRIBUTES, DAY, NOW, cond
from hypothesis import given
from hypothesis import strategies as st
from segmentation.engine import SegmentDef, Workspace
from segmentation.engine.bounds import rank
from segmentation.engine.exact import ABOVE_EVERYTHING
from segmentation.engine.reference import evaluate
from segmentation.engine.results import CHUNK_BITS, ResultSets

decimals = st.decimals(allow_nan=False, places=2, min_value=-5, max_value=5)


def test_rank_sorts_distinct_cuts_and_equal_cuts_share_an_index():
    cuts = [Decimal(3), Decimal("1.0"), ABOVE_EVERYTHING, Decimal("1.00"), Decimal("-Infinity")]
    ordered, *indexes = rank(cuts)
    assert ordered == (Decimal("-Infinity"), Decimal(1), Decimal(3), ABOVE_EVERYTHING)
    assert indexes == [2, 1, 3, 1, 0]


@given(st.lists(decimals, min_size=1, max_size=8), decimals)
def test_a_rank_answers_both_sides_of_every_cut(cuts, x):
    ordered, *indexes = rank(cuts)
    position = bisect_right(ordered, x)
    for cut, index in zip(cuts, indexes, strict=True):
        assert (cut <= x) is (position > index)
        assert (x < cut) is (position <= index)


def test_a_field_many_segments_test_is_ranked_with_the_same_answers():
    days = [1, 2, 3, 7, 14, 30, 90]
    segments = [
        SegmentDef(f"within_{d}", "", "users", cond("signed_up_at", "less_than_days_ago", d)) for d in days
    ]
    segments += [
        SegmentDef(f"before_{d}", "", "users", cond("signed_up_at", "more_than_days_ago", d)) for d in days
    ]
    segments.append(SegmentDef("yesterday", "", "users", cond("signed_up_at", "exactly_days_ago", 1)))
    workspace = Workspace(segments)
    assert "_bisect(" in workspace.sources["users"]
    for age in (0, 0.5, 1, 1.5, 2, 6.99, 7, 7.01, 29, 30, 31, 89.9, 90, 365):
        user = {"signed_up_at": Decimal(NOW - age * DAY), "last_seen_at": Decimal(NOW)}
        found = workspace.segments_of(user, NOW)
        assert {d for d in days if f"within_{d}" in found} == {d for d in days if age < d}, age
        assert {d for d in days if f"before_{d}" in found} == {d for d in days if age > d}, age
        assert ("yesterday" in found) is (0.5 < age <= 1.5), age  # NOW is noon UTC
    assert workspace.segments_of({"last_seen_at": Decimal(NOW)}, NOW) == {"active"}  # unknown: -1


def test_the_result_key_holds_more_segments_than_one_int_does():
    count = 2 * CHUNK_BITS + 5
    segments = [SegmentDef(f"s{i}", "", "users", cond("session_count", "gte", i)) for i in range(count)]
    workspace = Workspace(segments)
    for sessions in (0, 1, CHUNK_BITS - 1, CHUNK_BITS, 2 * CHUNK_BITS + 1, count + 3):
        found = workspace.segments_of({"session_count": Decimal(sessions)}, NOW)
        assert found == {f"s{i}" for i in range(count) if i <= sessions}, sessions


def test_result_sets_are_made_from_the_bits_and_kept():
    results = ResultSets(["a", "b", "c"])
    assert results.make(0b101) == {"a", "c"}
    assert results.known[0b101] == {"a", "c"}
    assert results.make(0) == frozenset()
    many = ResultSets([f"s{i}" for i in range(CHUNK_BITS + 2)])
    assert many.make((1, 0b10)) == {"s0", f"s{CHUNK_BITS + 1}"}


def test_conditions_in_several_segments_are_answered_once_with_the_same_answers():
    gmail = cond("email", "ends_with", "@gmail.com")
    recent = cond("custom_attributes.trial_ends_at", "less_than_days_from_now", 3)
    pro = cond("company.plan", "eq", "pro")
    segments = [
        SegmentDef("a", "", "users", {"and": [cond("session_count", "gt", 3), gmail]}),
        SegmentDef("b", "", "users", {"or": [recent, gmail, pro]}),
        SegmentDef("c", "", "users", {"not": {"and": [pro, recent]}}),
        SegmentDef("d", "", "users", {"and": [{"or": [pro, gmail]}, {"not": recent}]}),
    ]
    workspace = Workspace(segments, attributes=ATTRIBUTES)
    assert "_UNSET" in workspace.sources["users"]
    for email in ("Ada@GMAIL.com", "ada@example.com", None):
        for trial in (NOW + DAY, NOW + 5 * DAY, None):
            for companies in ([{"plan": "PRO"}], [{"plan": "free"}, {"plan": "pro"}], [], None):
                for sessions in (Decimal(1), Decimal(5)):
                    user = {
                        "email": email,
                        "session_count": sessions,
                        "custom_attributes": {"trial_ends_at": trial},
                        "companies": companies,
                    }
                    expected = {
                        s.id
                        for s in segments
                        if evaluate(s.filter, user, NOW, target="users", segments={}, attributes=ATTRIBUTES)
                    }
                    found = workspace.segments_of(user, NOW) - {"new", "active", "slipping_away"}
                    assert found == expected, user
