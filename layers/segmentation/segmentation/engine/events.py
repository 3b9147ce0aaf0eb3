"""What users did: the per-user event summaries the filter language reads (pure, no AWS).

A user item keeps, under `events`, one summary per event name (lower-cased):

    {"n": all-time count, "f": first created_at, "l": last created_at, "v": version,
     "d": {"<day>": events that day}, "t": {"<day>": [that day's created_at, sorted]}}

`<day>` is the UTC day number (epoch seconds // 86400) written in decimal. `d` keeps the days
from KEPT_DAYS before the writer's day on (every window of up to MAX_WINDOW_DAYS at any instant,
and the next day for an event stamped up to 5 minutes ahead); older days leave it at the next
rewrite of the summary. A window is (now - N days, now]: the whole days it covers are read from
`d`, and the two days it cuts from the times kept in `t`. A day keeps all its times or none:
times are the detail that a user's bounded event data (engine/event_budget.py) gives up, oldest
days first, and a day that gave them up counts its events, where a window cuts it, as if they
happened at the start of that day (exact again once the window has moved past that day).
"""

from __future__ import annotations

import math
from bisect import bisect_right, insort
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

SECONDS_PER_DAY = 86400
MAX_WINDOW_DAYS = 90
# A window's oldest day is MAX_WINDOW_DAYS before the reader's; one more day is kept for a reader
# whose clock is a little behind the writer's across midnight.
KEPT_DAYS = MAX_WINDOW_DAYS + 1
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


def day_key(day: int) -> str:
    return str(day)


def _day_of_key(key: Any) -> int | None:
    """The day a key of `d` or `t` names; None for anything else (junk in the item)."""
    return int(key) if key.__class__ is str and key.isascii() and key.isdigit() else None


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
        day = _day_of_key(key)
        if day is None or not _is_number(n):
            continue
        kept = times.get(key)
        stamps = tuple(float(t) for t in kept if _is_number(t)) if isinstance(kept, list) else ()
        days.append(Day(day, int(n), stamps))
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
    counts = raw.get("d")
    if counts.__class__ is not dict:
        return Decimal(0)
    low = now - within_days * SECONDS_PER_DAY
    first_day, last_day = day_of(low), day_of(now)
    total = 0
    for key, n in counts.items():
        day = _day_of_key(key)
        if day is None or not _is_number(n) or day < first_day or day > last_day:
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
        stamps = [float(t) for t in times if _is_number(t)]
        return len(stamps), sum(1 for t in stamps if low < t <= now)


def _as_time(value: Any) -> float:
    if value.__class__ in (Decimal, int, float):
        return float(value)
    raise TypeError("not a time")


# -- writing ------------------------------------------------------------------------------------


def kept(stored: Mapping[str, Any], now: float) -> dict[str, Any]:
    """A copy of a stored summary without the days that left every window (nor anything in `d` or
    `t` that is not a day's count or times)."""
    summary = dict(stored)
    oldest = day_of(now) - KEPT_DAYS
    counts: dict[str, Any] = {}
    raw_counts = summary.get("d")
    for key, n in raw_counts.items() if raw_counts.__class__ is dict else ():
        day = _day_of_key(key)
        if day is not None and day >= oldest and _is_number(n):
            counts[key] = n
    times: dict[str, Any] = {}
    raw_times = summary.get("t")
    for key, stamps in raw_times.items() if raw_times.__class__ is dict else ():
        if key in counts and stamps.__class__ is list:
            times[key] = stamps  # shared, not copied: `added` copies the one list it changes
    summary["d"], summary["t"] = counts, times
    return summary


def added(stored: Mapping[str, Any] | None, at: Decimal, now: float) -> dict[str, Any]:
    """The stored summary (as the item holds it) after one more event at `at`; days that left
    every window are dropped."""
    summary = kept(stored or {}, now)
    summary["n"] = _number_or_zero(summary.get("n")) + 1
    if not _is_number(summary.get("f")) or at < summary["f"]:
        summary["f"] = at
    if not _is_number(summary.get("l")) or at > summary["l"]:
        summary["l"] = at
    summary["v"] = _number_or_zero(summary.get("v")) + 1
    day = day_of(float(at))
    if day >= day_of(now) - KEPT_DAYS:
        key = day_key(day)
        if key not in summary["d"] or key in summary["t"]:  # a day keeps all its times or none
            times = [t for t in summary["t"].get(key, ()) if _is_number(t)]
            insort(times, at, key=float)
            summary["t"][key] = times
        summary["d"][key] = summary["d"].get(key, 0) + 1
    return summary


def compiled_stat(
    record: Mapping[str, Any], name: str, which: str, within_days: int | None, now: float
) -> Any:
    """`stat` in the argument order the generated code calls it with."""
    return stat(record, name, which, now, within_days)
