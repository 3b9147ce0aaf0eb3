"""When can a record's segment results change with no change to its data?

Only time-relative conditions depend on `now`. For each one and each known timestamp it reads,
the instants where the condition can flip are listed; the earliest after `now` is the answer.
Conservative: it may name an instant where nothing flips (say, inside a branch that does not
matter), never one later than a real flip.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping
from datetime import timedelta
from typing import Any, cast

from segmentation.engine.calendar import Calendar
from segmentation.engine.events import summary_of, window_edges
from segmentation.engine.fields import DAYS_OPS, SECONDS_PER_DAY
from segmentation.engine.model import Condition, DateValue
from segmentation.engine.values import as_timestamp, companies_of, custom_attributes_of

# Ops whose truth depends on now (or, for before/after, that the brief asks to revisit at D).
TIME_RELATIVE_OPS = frozenset({*DAYS_OPS, "before", "after"})


def is_time_relative(condition: Condition) -> bool:
    field = condition.field
    if field.kind == "event" and field.window is not None:  # a count within the last N days
        return True
    return field.type == "timestamp" and condition.op in TIME_RELATIVE_OPS


def next_change(
    conditions: Iterable[Condition], record: Mapping[str, Any], now: float, calendar: Calendar
) -> float | None:
    """The earliest instant > now at which any of `conditions` may flip for `record`, or None."""
    earliest = math.inf
    for condition in conditions:
        for stamp in _timestamps(condition, record):
            for instant, strictly_after in _flips(condition, stamp, calendar, now):
                if instant > now:
                    earliest = min(earliest, instant)
                elif instant == now and strictly_after:
                    # The flip happens just after now: the next representable instant.
                    earliest = min(earliest, math.nextafter(now, math.inf))
    return None if earliest == math.inf else earliest


def _timestamps(condition: Condition, record: Mapping[str, Any]) -> Iterator[float]:
    field = condition.field
    if field.kind == "event":
        summary = summary_of(record, field.name)
        if field.window is not None:  # each event enters and leaves the window: those instants
            yield from window_edges(summary, field.window)
        elif summary is not None:
            stamp = summary.first_at if field.stat == "first_at" else summary.last_at
            if stamp is not None:
                yield stamp
        return
    holders = companies_of(record) if field.via_company else (record,)
    for holder in holders:
        source = custom_attributes_of(holder) if field.kind == "custom" else holder
        stamp = as_timestamp(source.get(field.name))
        if not math.isnan(stamp):
            yield stamp


def _flips(condition: Condition, t: float, calendar: Calendar, now: float) -> list[tuple[float, bool]]:
    """(instant, flips strictly after it rather than at it) for one condition and timestamp t."""
    if condition.field.kind == "event" and condition.field.window is not None:
        return [(t, False)]  # window_edges gave the instants themselves
    op = condition.op
    if op in ("before", "after"):
        return [(calendar.instant(cast(DateValue, condition.value)), False)]
    days = cast(float, condition.value)
    span = days * SECONDS_PER_DAY
    if op == "less_than_days_ago":  # now - span < t <= now: true from t, false from t + span
        return [(t, False), (t + span, False)]
    if op == "more_than_days_ago":  # t < now - span: true just after t + span
        return [(t + span, True)]
    if op == "less_than_days_from_now":  # t - span < now <= t
        return [(t - span, True), (t, True)]
    if op == "more_than_days_from_now":  # now < t - span: false from t - span
        return [(t - span, False)]
    # exactly_days_ago: true on the whole day `days` days after the day of t.
    try:
        day = calendar.date_of(t) + timedelta(days=int(days))
    except (OverflowError, ValueError, OSError):
        return []
    start, end = calendar.day_bounds(day)
    return [(start, False), (end, False)]
