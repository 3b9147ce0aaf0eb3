"""Event fields: window arithmetic at day and time-zone boundaries, summaries, validation."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from engine_helpers import ATTRIBUTES, DAY, NOW, both
from segmentation.engine import SegmentDef, Workspace, validate_filter
from segmentation.engine.events import stat, summary_of
from segmentation.errors import Invalid
from segmentation.event_summaries.stored import KEPT_DAYS, MAX_WINDOW_DAYS, added


def user_with(*times: float, name: str = "uploaded_photo", now: float = NOW) -> dict[str, Any]:
    summary = None
    for t in times:
        summary = added(summary, Decimal(repr(t)), now)
    return {"events": {name: summary}}


def count(days: int | None = None, op: str = "gte", value: float = 1) -> dict[str, Any]:
    condition: dict[str, Any] = {"field": "event.uploaded_photo.count", "op": op, "value": value}
    if days is not None:
        condition["within_days"] = days
    return condition


@pytest.mark.parametrize("days", [1, 7, 90])
def test_an_event_counts_until_exactly_n_days_after_it(days: int) -> None:
    t = NOW - 100.0
    user = user_with(t)
    assert both(count(days), user, t) and both(count(days), user, t + days * DAY - 0.001)
    assert not both(count(days), user, t + days * DAY)  # now - N days < t is false at the edge
    assert not both(count(days), user, t - 0.001)  # not yet: t <= now
    assert both(count(), user, t + 400 * DAY)  # all time


def test_an_event_ahead_of_now_counts_in_a_window_from_its_time_only() -> None:
    user = user_with(NOW + 300)  # created_at may be up to 5 minutes ahead
    assert not both(count(7), user, NOW) and both(count(7), user, NOW + 300)
    assert both(count(), user, NOW)  # the all-time count includes it at once


def test_windows_count_every_event_of_whole_and_cut_days() -> None:
    times = [NOW - d * DAY - 60 for d in range(10)]  # one a day, each a minute before now's time of day
    user = user_with(*times)
    for days in (1, 3, 7, 10):
        assert both(count(days, "eq", days), user, NOW), days


def test_every_time_of_a_busy_day_is_kept_so_its_cut_counts_stay_exact() -> None:
    day_start = (NOW // DAY) * DAY
    times = [day_start + 3600 + i for i in range(500)]
    user = user_with(*times, now=day_start + 7200)
    summary = summary_of(user, "uploaded_photo")
    assert summary is not None and summary.count == 500 and len(summary.days[0].times) == 500
    assert stat(user, "uploaded_photo", "count", day_start + 7200, 1) == 500
    # Cut by a window starting mid-day: the 11 events at or before its start are out.
    later = day_start + DAY + 3600 + 10
    assert stat(user, "uploaded_photo", "count", later, 1) == 500 - 11
    assert both(count(1, "eq", 489), user, later)


def test_a_day_whose_times_were_dropped_counts_them_from_its_start_where_a_window_cuts_it() -> None:
    day_start = (NOW // DAY) * DAY
    user = user_with(*[day_start + 3600 + i for i in range(5)], now=day_start + 7200)
    summary = user["events"]["uploaded_photo"]
    key = str(int(day_start // DAY))
    user = {"events": {"uploaded_photo": {**summary, "t": {key: summary["t"][key][:2]}}}}  # 3 dropped
    later = day_start + DAY + 3600 + 0.5  # the window starts just after the first kept time
    assert stat(user, "uploaded_photo", "count", later, 1) == 1  # the second kept one; not the 3 others
    assert both(count(1, "eq", 1), user, later)
    assert stat(user, "uploaded_photo", "count", day_start + 7200, 1) == 5  # whole day inside: exact
    assert both(count(2, "eq", 5), user, later)


def test_a_day_that_gave_up_its_times_keeps_counting_without_them() -> None:
    day_start = (NOW // DAY) * DAY
    key = str(int(day_start // DAY))
    summary = user_with(day_start + 10, day_start + 20)["events"]["uploaded_photo"]
    without_times = {**summary, "t": {}}
    later = added(without_times, Decimal(repr(day_start + 15)), NOW)
    assert later["d"] == {key: 3} and later["t"] == {}  # not a partial list: all of them or none
    assert added(summary, Decimal(repr(day_start + 15)), NOW)["t"][key] == [
        Decimal(repr(day_start + t)) for t in (10, 15, 20)
    ]


def test_old_days_leave_the_summary_and_the_all_time_count_stays() -> None:
    times = [NOW - d * DAY for d in (0, KEPT_DAYS + 1, 200)]
    summary = summary_of(user_with(*times), "uploaded_photo")
    assert summary is not None and summary.count == 3
    assert [b.day for b in summary.days] == [int(NOW // DAY)]  # the others left every window
    assert summary.first_at == times[2] and summary.last_at == times[0]


def test_times_of_a_day_stay_sorted_whatever_the_order_they_come_in() -> None:
    day_start = (NOW // DAY) * DAY
    order = [5, 1, 9, 3, 7, 0, 8]
    user = user_with(*[day_start + 100 * i for i in order])
    (kept,) = user["events"]["uploaded_photo"]["t"].values()
    assert kept == sorted(kept) and len(kept) == len(order)
    for cut in range(10):  # a window starting after each of them
        now = day_start + DAY + 100 * cut + 50
        assert stat(user, "uploaded_photo", "count", now, 1) == sum(1 for i in order if i > cut), cut


@pytest.mark.parametrize(("zone", "hours"), [("UTC", 11.5), ("America/New_York", 7), ("Asia/Kolkata", -6.5)])
def test_first_and_last_use_calendar_days_of_the_workspace_zone(zone: str, hours: float) -> None:
    """NOW is 12:00 UTC: an event `hours` before it is 2 local days ago in one zone, not another."""
    t = NOW - 2 * DAY - hours * 3600
    user = user_with(t, NOW - 3600)
    calendar = Workspace([], timezone=zone).calendar
    two_days_ago = (calendar.date_of(NOW) - calendar.date_of(t)).days == 2
    first = {"field": "event.uploaded_photo.first_at", "op": "exactly_days_ago", "value": 2}
    assert both(first, user, NOW, timezone=zone) is two_days_ago
    assert both({"field": "event.uploaded_photo.last_at", "op": "less_than_days_ago", "value": 1}, user)


def test_a_user_who_never_did_it_has_count_0_and_unknown_times() -> None:
    user: dict[str, Any] = {}
    assert both(count(7, "eq", 0), user) and both(count(None, "lt", 1), user)
    assert both({"field": "event.uploaded_photo.first_at", "op": "not_exists"}, user)
    assert both({"field": "event.uploaded_photo.last_at", "op": "not_exists"}, user)
    assert not both({"field": "event.uploaded_photo.first_at", "op": "less_than_days_ago", "value": 30}, user)


def test_names_are_case_insensitive() -> None:
    user = user_with(NOW - 10)
    assert both({"field": "event.Uploaded_Photo.count", "op": "eq", "value": 1}, user)


def test_the_membership_changes_when_an_event_leaves_the_window_and_next_change_says_when() -> None:
    segment = SegmentDef("engaged", "Engaged", "users", count(7, "gte", 2))
    workspace = Workspace([segment])
    user = user_with(NOW - 3 * DAY, NOW - 1 * DAY)
    assert "engaged" in workspace.segments_of(user, NOW)
    change = workspace.next_change(user, NOW)
    assert change is not None and change <= NOW + 4 * DAY
    assert "engaged" not in workspace.segments_of(user, NOW + 4 * DAY)


@pytest.mark.parametrize(
    ("condition", "path"),
    [
        ({**count(), "within_days": 0}, "filter.within_days"),
        ({**count(), "within_days": MAX_WINDOW_DAYS + 1}, "filter.within_days"),
        ({**count(), "within_days": 1.5}, "filter.within_days"),
        ({**count(), "within_days": True}, "filter.within_days"),
        ({"field": "event.uploaded_photo.first_at", "op": "exists", "within_days": 7}, "filter.within_days"),
        ({"field": "email", "op": "exists", "within_days": 7}, "filter.within_days"),
        ({"field": "event.never_seen.count", "op": "gte", "value": 1}, "filter.field"),
        ({"field": "event.uploaded_photo.total", "op": "gte", "value": 1}, "filter.field"),
        ({"field": "event.1bad.count", "op": "gte", "value": 1}, "filter.field"),
        ({"field": "event.uploaded_photo.count", "op": "contains", "value": "x"}, "filter.op"),
    ],
)
def test_bad_event_conditions_are_422_at_their_node(condition: dict[str, Any], path: str) -> None:
    with pytest.raises(Invalid) as caught:
        validate_filter(condition, target="users", attributes=ATTRIBUTES, segments={})
    assert [d["path"] for d in caught.value.details or []] == [path]


def test_company_filters_cannot_read_events() -> None:
    with pytest.raises(Invalid):
        validate_filter(count(7), target="companies", attributes=ATTRIBUTES, segments={})
