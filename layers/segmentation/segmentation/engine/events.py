"""What users did: the per-user event summaries the filter language reads (pure, no AWS).

A user item keeps, under `events`, one summary per event name (lower-cased):

    {"n": all-time count, "f": first created_at, "l": last created_at, "v": version,
     "d": {"<slot>": {"day": D, "n": events that day, "t": [their created_at, up to 20]}}}

`d` is a ring of DAY_SLOTS day buckets (slot = UTC day number % DAY_SLOTS), enough to answer
"how many in the last N days" for N up to MAX_WINDOW_DAYS at any instant: a window is
(now - N days, now], so it covers whole days and two partial ones, and the partial ones are
counted from the exact times kept for each day. A day beyond TIMES_PER_DAY events keeps counting
(`n`) without the extra times: in the two partial days of a window those events are counted as
if they happened at the start of their day (exact again once the window moves past that day).
A bucket of another day than its slot's is stale: it is ignored, and the next write replaces it.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

SECONDS_PER_DAY = 86400
MAX_WINDOW_DAYS = 90
# 90 days of window plus the day of now (and 5 minutes ahead of it) fit in 92 slots.
DAY_SLOTS = 92
TIMES_PER_DAY = 20
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


def day_of(t: float) -> int:
    return math.floor(t / SECONDS_PER_DAY)


def summary_of(record: Mapping[str, Any], name: str) -> Summary | None:
    """The summary of one event for a user record, None when the user never did it (or the
    stored value is not a summary)."""
    events = record.get("events")
    raw = events.get(name) if isinstance(events, dict) else None
    if not isinstance(raw, dict):
        return None
    days: list[Day] = []
    buckets = raw.get("d")
    if isinstance(buckets, dict):
        for bucket in buckets.values():
            if isinstance(bucket, dict) and _is_number(bucket.get("day")) and _is_number(bucket.get("n")):
                times = bucket.get("t")
                stamps = tuple(float(t) for t in times if _is_number(t)) if isinstance(times, list) else ()
                days.append(Day(int(bucket["day"]), int(bucket["n"]), stamps))
    return Summary(
        count=int(_number_or_zero(raw.get("n"))),
        first_at=float(raw["f"]) if _is_number(raw.get("f")) else None,
        last_at=float(raw["l"]) if _is_number(raw.get("l")) else None,
        days=tuple(days),
    )


def _number_or_zero(value: Any) -> Any:
    return value if _is_number(value) else 0


def _is_number(value: object) -> bool:
    return value.__class__ in (int, float, Decimal) and not (isinstance(value, float) and math.isnan(value))


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
        return value if _is_number(value) else None
    if within_days is None:
        return Decimal(int(_number_or_zero(raw.get("n"))))
    buckets = raw.get("d")
    if buckets.__class__ is not dict:
        return Decimal(0)
    low = now - within_days * SECONDS_PER_DAY
    first_day, last_day = day_of(low), day_of(now)
    total = 0
    for bucket in buckets.values():
        if bucket.__class__ is not dict:
            continue
        stored_day: Any = bucket.get("day")
        n: Any = bucket.get("n")
        if not (_is_number(stored_day) and _is_number(n)):
            continue
        day = int(stored_day)
        if first_day < day < last_day:  # the whole day is inside: no time needs reading
            total += int(n)
        elif first_day <= day <= last_day:
            total += _partial_day(day, int(n), bucket.get("t"), low, now)
    return Decimal(total)


def _partial_day(day: int, n: int, times: Any, low: float, now: float) -> int:
    """A day at an end of the window (low, now]: its kept times inside the window, and the events
    beyond the kept times counted as if at the start of their day."""
    stamps = [float(t) for t in times if _is_number(t)] if times.__class__ is list else []
    start, end = day * SECONDS_PER_DAY, (day + 1) * SECONDS_PER_DAY
    if end <= low or start > now:
        return 0
    if low < start and end <= now:
        return n
    inside = sum(1 for t in stamps if low < t <= now)
    return inside + (n - len(stamps) if low < start <= now else 0)


# -- writing ------------------------------------------------------------------------------------


def added(stored: Mapping[str, Any] | None, at: Decimal, now: float) -> dict[str, Any]:
    """The stored summary (as the item holds it) after one more event at `at`; buckets of days
    that left every window are dropped."""
    summary: dict[str, Any] = dict(stored) if stored else {}
    summary["n"] = _number_or_zero(summary.get("n")) + 1
    if not _is_number(summary.get("f")) or at < summary["f"]:
        summary["f"] = at
    if not _is_number(summary.get("l")) or at > summary["l"]:
        summary["l"] = at
    summary["v"] = _number_or_zero(summary.get("v")) + 1
    oldest = day_of(now) - MAX_WINDOW_DAYS - 1
    buckets = summary.get("d") if summary.get("d").__class__ is dict else {}
    assert isinstance(buckets, dict)
    kept = {
        slot: bucket
        for slot, bucket in buckets.items()
        if bucket.__class__ is dict and _is_number(bucket.get("day")) and int(bucket["day"]) >= oldest
    }
    day = day_of(float(at))
    if day >= oldest:
        slot = str(day % DAY_SLOTS)
        bucket = kept.get(slot)
        if bucket is None or int(bucket["day"]) != day:
            bucket = {"day": day, "n": 0, "t": []}
        times = list(bucket.get("t") or [])
        if len(times) < TIMES_PER_DAY:
            times.append(at)
        kept[slot] = {"day": day, "n": int(bucket.get("n", 0)) + 1, "t": times}
    summary["d"] = kept
    return summary


def compiled_stat(
    record: Mapping[str, Any], name: str, which: str, within_days: int | None, now: float
) -> Any:
    """`stat` in the argument order the generated code calls it with."""
    return stat(record, name, which, now, within_days)
