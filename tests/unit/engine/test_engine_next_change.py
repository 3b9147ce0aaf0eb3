"""next_change: the earliest instant after now at which a record's segments can change by time alone."""

from __future__ import annotations

import math
from decimal import Decimal

from engine_helpers import ATTRIBUTES, DAY, NOW, cond
from segmentation.engine import SegmentDef, Workspace, parse_timestamp

T = parse_timestamp


def flips_at(workspace: Workspace, record: dict, instant: float) -> bool:
    return workspace.segments_of(record, instant - 0.001) != workspace.segments_of(record, instant)


def test_new_user_leaves_new_one_day_after_signing_up():
    workspace = Workspace([])
    user = {"signed_up_at": Decimal(int(NOW - 0.5 * DAY))}
    change = workspace.next_change(user, NOW)
    assert change == NOW + 0.5 * DAY
    assert "new" in workspace.segments_of(user, change - 0.001)
    assert "new" not in workspace.segments_of(user, change)


def test_active_user_turns_slipping_away_just_after_thirty_days():
    workspace = Workspace([])
    user = {"signed_up_at": Decimal(int(NOW - 100 * DAY)), "last_seen_at": Decimal(int(NOW - 29 * DAY))}
    change = workspace.next_change(user, NOW)
    assert change == NOW + DAY
    assert workspace.segments_of(user, change - 0.001) == {"active"}
    assert workspace.segments_of(user, change) == frozenset()  # active ends at t + 30d ...
    assert workspace.segments_of(user, change + 0.001) == {"slipping_away"}  # ... slipping starts just after
    assert workspace.next_change(user, change) == math.nextafter(change, math.inf)
    assert workspace.next_change(user, change + 1) is None  # nothing left to happen


def test_none_when_nothing_depends_on_time():
    workspace = Workspace([SegmentDef("pro", "Pro", "users", cond("custom_attributes.plan", "eq", "pro"))])
    assert workspace.next_change({"custom_attributes": {"plan": "pro"}}, NOW) is None
    assert workspace.next_change({"size": 3}, NOW, "companies") is None


def test_a_future_timestamp_enters_less_than_days_ago_when_it_arrives():
    workspace = Workspace([])
    user = {"signed_up_at": Decimal(int(NOW + 3600))}
    change = workspace.next_change(user, NOW)
    assert change == NOW + 3600
    assert flips_at(workspace, user, change)


def test_exactly_days_ago_changes_at_local_midnights():
    segment = SegmentDef("two_days", "Two days", "users", cond("last_seen_at", "exactly_days_ago", 2))
    workspace = Workspace([segment], timezone="America/New_York")
    seen = T("2026-11-26T15:00:00Z")  # Nov 26 local
    user = {"last_seen_at": Decimal(int(seen))}
    now = T("2026-11-27T12:00:00Z")
    first = workspace.next_change(user, now)
    assert first == T("2026-11-28T05:00:00Z")  # Nov 28 00:00 local: Nov 26 is now two days ago
    assert "two_days" not in workspace.segments_of(user, first - 0.001)
    assert "two_days" in workspace.segments_of(user, first)
    second = workspace.next_change(user, first)
    assert second == T("2026-11-29T05:00:00Z")
    assert "two_days" in workspace.segments_of(user, second - 0.001)
    assert "two_days" not in workspace.segments_of(user, second)


def test_from_now_ops():
    ahead = SegmentDef(
        "soon", "Soon", "users", cond("custom_attributes.trial_ends_at", "less_than_days_from_now", 3)
    )
    later = SegmentDef(
        "later", "Later", "users", cond("custom_attributes.trial_ends_at", "more_than_days_from_now", 7)
    )
    workspace = Workspace([ahead, later], attributes=ATTRIBUTES)
    ends = NOW + 10 * DAY
    user = {"custom_attributes": {"trial_ends_at": Decimal(int(ends))}}
    assert workspace.segments_of(user, NOW) == {"later"}
    change = workspace.next_change(user, NOW)
    assert change == ends - 7 * DAY
    assert workspace.segments_of(user, change) == frozenset()
    change = workspace.next_change(user, change)
    assert change == ends - 3 * DAY
    assert workspace.segments_of(user, change + 0.001) == {"soon"}  # enters just after the boundary
    change = workspace.next_change(user, change + 0.001)
    assert change == ends
    assert workspace.segments_of(user, change) == {"soon"}
    assert workspace.segments_of(user, change + 0.001) == frozenset()


def test_before_and_after_report_d_and_companies_count():
    dated = SegmentDef("dated", "Dated", "users", cond("signed_up_at", "before", "2026-12-01"))
    renewed = SegmentDef(
        "renewed", "Renewed", "users", cond("company.custom_attributes.renewed_at", "less_than_days_ago", 5)
    )
    workspace = Workspace([dated, renewed], attributes=ATTRIBUTES)
    user = {
        "signed_up_at": Decimal(int(NOW - 300 * DAY)),
        "last_seen_at": Decimal(int(NOW - 300 * DAY)),
        "companies": [{"custom_attributes": {"renewed_at": Decimal(int(NOW - 4 * DAY))}}, {}],
    }
    assert workspace.next_change(user, NOW) == NOW + DAY  # the company renewal leaves the 5-day window
    assert flips_at(workspace, user, NOW + DAY)
    assert workspace.next_change(user, NOW + DAY) == T("2026-12-01T00:00:00Z")  # conservative: D itself
