"""The event summaries as a user item stores them: their form and how a new event is added (pure,
no AWS). The engine reads them (engine/events.py), storage writes them (storage/events.py,
storage/user_batches.py); budget.py bounds their size.

A user item keeps, under `events`, one summary per event name (lower-cased):

    {"n": all-time count, "f": first created_at, "l": last created_at, "v": version,
     "d": {"<day>": events that day}, "t": {"<day>": [that day's created_at, sorted]}}

`<day>` is the UTC day number (epoch seconds // 86400) written in decimal. `d` keeps the days
from KEPT_DAYS before the writer's day on (every window of up to MAX_WINDOW_DAYS at any instant,
and the next day for an event stamped up to 5 minutes ahead); older days leave it at the next
rewrite of the summary. A day keeps all its times or none: times are the detail that a user's
bounded event data (budget.py) gives up, oldest days first.
"""

from __future__ import annotations

import math
from bisect import insort
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

SECONDS_PER_DAY = 86400
MAX_WINDOW_DAYS = 90
# A window's oldest day is MAX_WINDOW_DAYS before the reader's; one more day is kept for a reader
# whose clock is a little behind the writer's across midnight.
KEPT_DAYS = MAX_WINDOW_DAYS + 1


def day_of(t: float) -> int:
    return math.floor(t / SECONDS_PER_DAY)


def day_key(day: int) -> str:
    return str(day)


def day_of_key(key: Any) -> int | None:
    """The day a key of `d` or `t` names; None for anything else (junk in the item)."""
    return int(key) if key.__class__ is str and key.isascii() and key.isdigit() else None


def number_or_zero(value: Any) -> Any:
    return value if is_summary_number(value) else 0


def is_summary_number(value: object) -> bool:
    """A number a summary may hold: int, float or Decimal, not bool, not NaN."""
    return value.__class__ in (int, float, Decimal) and not (isinstance(value, float) and math.isnan(value))


def kept(stored: Mapping[str, Any], now: float) -> dict[str, Any]:
    """A copy of a stored summary without the days that left every window (nor anything in `d` or
    `t` that is not a day's count or times)."""
    summary = dict(stored)
    oldest = day_of(now) - KEPT_DAYS
    counts: dict[str, Any] = {}
    raw_counts = summary.get("d")
    for key, n in raw_counts.items() if raw_counts.__class__ is dict else ():
        day = day_of_key(key)
        if day is not None and day >= oldest and is_summary_number(n):
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
    summary["n"] = number_or_zero(summary.get("n")) + 1
    if not is_summary_number(summary.get("f")) or at < summary["f"]:
        summary["f"] = at
    if not is_summary_number(summary.get("l")) or at > summary["l"]:
        summary["l"] = at
    summary["v"] = number_or_zero(summary.get("v")) + 1
    day = day_of(float(at))
    if day >= day_of(now) - KEPT_DAYS:
        key = day_key(day)
        if key not in summary["d"] or key in summary["t"]:  # a day keeps all its times or none
            times = [t for t in summary["t"].get(key, ()) if is_summary_number(t)]
            insort(times, at, key=float)
            summary["t"][key] = times
        summary["d"][key] = summary["d"].get(key, 0) + 1
    return summary
