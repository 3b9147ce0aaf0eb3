"""Workspace: predefined segments, references by meaning to any depth, graph errors, companies."""

from __future__ import annotations

from decimal import Decimal

import pytest
from engine_helpers import ATTRIBUTES, DAY, NOW, both, cond
from segmentation.engine import PREDEFINED_SEGMENTS, SegmentDef, Workspace
from segmentation.engine.reference import evaluate
from segmentation.errors import Invalid


def at(offset_days: float) -> Decimal:
    return Decimal(int(NOW + offset_days * DAY))


def test_predefined_segments():
    assert [(s.id, s.name, s.target, s.predefined) for s in PREDEFINED_SEGMENTS] == [
        ("new", "New", "users", True),
        ("active", "Active", "users", True),
        ("slipping_away", "Slipping away", "users", True),
    ]
    workspace = Workspace([])
    assert workspace.segment_ids("users") == ("new", "active", "slipping_away")
    assert workspace.segments_of({"signed_up_at": at(-0.5), "last_seen_at": at(-0.1)}, NOW) == {
        "new",
        "active",
    }
    assert workspace.segments_of({"signed_up_at": at(-40), "last_seen_at": at(-31)}, NOW) == {"slipping_away"}
    assert workspace.segments_of({"signed_up_at": at(-40)}, NOW) == {"slipping_away"}  # never seen
    assert workspace.segments_of({"signed_up_at": at(-20)}, NOW) == frozenset()
    assert workspace.segments_of({}, NOW) == frozenset()
    assert workspace.segment_ids("companies") == ()


def test_segments_of_user_and_company_targets():
    segments = [
        SegmentDef(
            "trial",
            "Trial users",
            "users",
            {
                "and": [
                    cond("signed_up_at", "less_than_days_ago", 14),
                    cond("custom_attributes.plan", "eq", "free trial"),
                ]
            },
        ),
        SegmentDef("big", "Big", "companies", cond("size", "gte", 100)),
    ]
    workspace = Workspace(segments, attributes=ATTRIBUTES)
    user = {"signed_up_at": at(-3), "custom_attributes": {"plan": "Free Trial"}}
    assert workspace.segments_of(user, NOW) == {"trial"}
    assert workspace.segments_of(user, NOW + 11 * DAY - 1) == {"trial"}
    assert workspace.segments_of(user, NOW + 11 * DAY) == frozenset()  # signed up exactly 14 days ago
    assert workspace.segments_of({"size": Decimal(100)}, NOW, "companies") == {"big"}
    assert workspace.segments_of({"size": Decimal(99)}, NOW, "companies") == frozenset()
    assert not workspace.uses_company_fields


def test_references_resolve_by_meaning_to_any_depth():
    chain = [SegmentDef("s0", "S0", "users", cond("session_count", "gt", 10))]
    for depth in range(1, 8):  # each refers to the one before, alternating in and not in
        op = "in_segment" if depth % 2 else "not_in_segment"
        chain.append(SegmentDef(f"s{depth}", f"S{depth}", "users", cond("segment", op, f"s{depth - 1}")))
    workspace = Workspace(reversed(chain))  # the order given does not matter
    many, few = {"session_count": Decimal(11)}, {"session_count": Decimal(1)}
    assert workspace.segments_of(many, NOW) == {"s0", "s1", "s4", "s5"}
    assert workspace.segments_of(few, NOW) == {"s2", "s3", "s6", "s7"}
    # A search over the deepest one sees the same, whatever membership is stored on the record.
    deepest = workspace.predicate(cond("segment", "in_segment", "s7"))
    assert deepest({**few, "segments": {"s0"}}, NOW) is True
    assert deepest(many, NOW) is False
    assert both(cond("segment", "in_segment", "s7"), few, segments=chain) is True


def test_a_reference_to_a_predefined_segment_follows_time():
    recent = SegmentDef(
        "recent_pro",
        "Recent pro",
        "users",
        {"and": [cond("segment", "in_segment", "new"), cond("custom_attributes.plan", "eq", "pro")]},
    )
    workspace = Workspace([recent])
    user = {"signed_up_at": at(-0.5), "custom_attributes": {"plan": "pro"}}
    assert "recent_pro" in workspace.segments_of(user, NOW)
    assert "recent_pro" not in workspace.segments_of(user, NOW + DAY)


def test_broken_definitions_are_left_out_with_a_reason_and_the_others_still_work():
    pro = SegmentDef("pro", "Pro", "users", cond("custom_attributes.plan", "eq", "pro"))
    workspace = Workspace(
        [
            pro,
            SegmentDef("a", "A", "users", cond("segment", "in_segment", "b")),
            SegmentDef("b", "B", "users", cond("segment", "in_segment", "a")),
            SegmentDef("gone_ref", "G", "users", cond("segment", "in_segment", "gone")),
            SegmentDef("c", "C", "companies", cond("plan", "exists")),
            SegmentDef("other_target", "O", "users", cond("segment", "in_segment", "c")),
            SegmentDef("bad_op", "Bad", "users", cond("email", "gt", 1)),
            SegmentDef("via_broken", "V", "users", cond("segment", "in_segment", "gone_ref")),
        ]
    )
    assert "cycle" in workspace.broken["a"] and "cycle" in workspace.broken["b"]
    assert "no segment" in workspace.broken["gone_ref"]
    assert "companies segment" in workspace.broken["other_target"]
    assert set(workspace.broken) == {"a", "b", "gone_ref", "other_target", "bad_op", "via_broken"}
    assert workspace.broken_ids("users") == frozenset(workspace.broken)
    assert workspace.broken_ids("companies") == frozenset()
    user = {"custom_attributes": {"plan": "pro"}, "last_seen_at": NOW - 1}
    assert workspace.segments_of(user, NOW) == {"pro", "active"}
    assert "c" in workspace.segments_of({"plan": "x"}, NOW, "companies")
    with pytest.raises(Invalid, match="cannot be evaluated"):
        workspace.predicate(cond("segment", "in_segment", "via_broken"))


def test_predicate_rejects_unknown_segments_and_caches():
    workspace = Workspace([])
    with pytest.raises(Invalid):
        workspace.predicate(cond("segment", "in_segment", "nope"))
    raw = cond("email", "exists")
    assert workspace.predicate(raw) is workspace.predicate(dict(raw))


def test_uses_company_fields():
    assert Workspace(
        [SegmentDef("p", "P", "users", {"not": cond("company.plan", "eq", "pro")})]
    ).uses_company_fields
    assert not Workspace([SegmentDef("p", "P", "companies", cond("plan", "eq", "pro"))]).uses_company_fields


def test_company_segments_in_a_workspace():
    pro = SegmentDef("pro", "Pro customers", "users", cond("company.plan", "eq", "pro"))
    workspace = Workspace([pro])
    assert "pro" in workspace.segments_of({"companies": [{"plan": "free"}, {"plan": "PRO"}]}, NOW)
    assert "pro" not in workspace.segments_of({"companies": [{"plan": "free"}]}, NOW)
    assert "pro" not in workspace.segments_of({}, NOW)


def test_a_given_segment_and_the_reference_agree_on_a_mixed_record():
    segment = SegmentDef(
        "mix",
        "Mix",
        "users",
        {
            "or": [
                {
                    "and": [
                        cond("custom_attributes.photos_uploaded", "gt", 80),
                        cond("custom_attributes.plan", "eq", "starter"),
                    ]
                },
                {"not": cond("company.custom_attributes.tier", "in", ["gold", "silver"])},
            ]
        },
    )
    workspace = Workspace([segment], attributes=ATTRIBUTES)
    records = [
        {"custom_attributes": {"photos_uploaded": Decimal(82), "plan": "Starter"}, "companies": [{}]},
        {
            "custom_attributes": {"photos_uploaded": Decimal(80)},
            "companies": [{"custom_attributes": {"tier": "GOLD"}}],
        },
        {"custom_attributes": {}, "companies": [{"custom_attributes": {"tier": "bronze"}}]},
    ]
    for record in records:
        expected = evaluate(
            segment.filter, record, NOW, target="users", segments={"mix": segment}, attributes=ATTRIBUTES
        )
        assert ("mix" in workspace.segments_of(record, NOW)) is expected
    assert [("mix" in workspace.segments_of(r, NOW)) for r in records] == [True, False, True]
