"""What users did, as the filter language reads it: the per-user event summaries (their stored
form: event_summaries/stored.py) evaluated (pure, no AWS).

A window is (now - N days, now]: the whole days it covers are read from
`d`, and the two days it cuts from the times kept in `t`. A day keeps all its times or none:
times are the detail that a user's bounded event data (event_summaries/budget.py) gives up, oldest
days first, and a day that gave them up counts its events, where a window cuts it, as if they
happened at the start of that day (exact again once the window has moved past that day).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from segmentation.event_summaries.stored import (
    SECONDS_PER_DAY,
    day_of,
    day_of_key,
    is_summary_number,
    number_or_zero,
)

EVENT_STATS = ("count", "first_at", "last_at")


@dataclass(frozen=True, slots=True)
class Day:
    day: int
    count: int
    times: tuple[float, ...]


@dataclass(frozen=True, slots=True)
class Summary:
    count: int
    first_at: float | None
    last_at: float | None
    days: tuple[Day, ...]


def summary_of(record: Mapping[str, Any], name: str) -> Summary | None:
    """The summary of one event for a user record, None when the user never did it (or the
    stored value is not a summary)."""
    events = record.get("events")
    raw = events.get(name) if isinstance(events, dict) else None
    if not isinstance(raw, dict):
        return None
    times = raw.get("t")
    if not isinstance(times, dict):
        times = {}
    days: list[Day] = []
    counts = raw.get("d")
    for key, n in counts.items() if isinstance(counts, dict) else ():
        day = day_of_key(key)
        if day is None or not is_summary_number(n):
            continue
        kept = times.get(key)
        stamps = tuple(float(t) for t in kept if is_summary_number(t)) if isinstance(kept, list) else ()
        days.append(Day(day, int(n), stamps))
    return Summary(
        count=int(number_or_zero(raw.get("n"))),
        first_at=float(raw["f"]) if is_summary_number(raw.get("f")) else None,
        last_at=float(raw["l"]) if is_summary_number(raw.get("l")) else None,
        days=tuple(days),
    )


def window_edges(summary: Summary | None, days: int) -> Iterator[float]:
    """Instants at which a count within `days` may change by time alone: each event enters at its
    time and leaves `days` later (an event whose time was not kept: at the start of its day)."""
    if summary is None:
        return
    span = days * SECONDS_PER_DAY
    for bucket in summary.days:
        stamps = list(bucket.times)
        if bucket.count > len(bucket.times):
            stamps.append(float(bucket.day * SECONDS_PER_DAY))
        for t in stamps:
            yield t
            yield t + span


def stat(record: Mapping[str, Any], name: str, which: str, now: float, within_days: int | None) -> Any:
    """What `event.<name>.<which>` reads: a count (known 0 for a user who never did it), or the
    first/last time (unknown: None). A count within N days counts the events with
    now - N days < created_at <= now. It reads the stored summary in place, without building a
    Summary: the engine calls it for every record and condition."""
    events = record.get("events")
    raw = events.get(name) if events.__class__ is dict else None
    if raw.__class__ is not dict:
        return Decimal(0) if which == "count" else None
    if which != "count":
        value = raw.get("f" if which == "first_at" else "l")
        return value if is_summary_number(value) else None
    if within_days is None:
        return Decimal(int(number_or_zero(raw.get("n"))))
    counts = raw.get("d")
    if counts.__class__ is not dict:
        return Decimal(0)
    low = now - within_days * SECONDS_PER_DAY
    first_day, last_day = day_of(low), day_of(now)
    total = 0
    for key, n in counts.items():
        day = day_of_key(key)
        if day is None or not is_summary_number(n) or day < first_day or day > last_day:
            continue
        if first_day < day < last_day:  # the whole day is inside: no time needs reading
            total += int(n)
        else:
            times = raw.get("t")
            total += _partial_day(day, int(n), times.get(key) if times.__class__ is dict else None, low, now)
    return Decimal(total)


def _partial_day(day: int, n: int, times: Any, low: float, now: float) -> int:
    """A day at an end of the window (low, now]: its kept times inside the window, and the events
    beyond the kept times counted as if at the start of their day."""
    start, end = day * SECONDS_PER_DAY, (day + 1) * SECONDS_PER_DAY
    if end <= low or start > now:
        return 0
    if low < start and end <= now:
        return n
    kept, inside = _times_inside(times, low, now)
    return inside + (n - kept if low < start <= now else 0)


def _times_inside(times: Any, low: float, now: float) -> tuple[int, int]:
    """(how many times are kept, how many of them are in (low, now]). Writers keep them sorted
    numbers, so two binary searches answer (comparing as floats, as timing's instants are); a
    list holding anything else is read one value at a time."""
    if times.__class__ is not list:
        return 0, 0
    try:
        return len(times), bisect_right(times, now, key=_as_time) - bisect_right(times, low, key=_as_time)
    except TypeError:
        stamps = [float(t) for t in times if is_summary_number(t)]
        return len(stamps), sum(1 for t in stamps if low < t <= now)


def _as_time(value: Any) -> float:
    if value.__class__ in (Decimal, int, float):
        return float(value)
    raise TypeError("not a time")


def compiled_stat(
    record: Mapping[str, Any], name: str, which: str, within_days: int | None, now: float
) -> Any:
    """`stat` in the argument order the generated code calls it with."""
    return stat(record, name, which, now, within_days)
