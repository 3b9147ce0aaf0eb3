"""How much of a user item its event summaries may take, and what goes first when they would take
more (pure, no AWS).

DynamoDB refuses an item over 400 KB, and a user item holds more than events: up to 250 custom
attributes of up to 255 characters (about 80 KB in ASCII), up to 100 company ids (26 KB), the ids
of the segments it is in, its fields. The `events` attribute is kept within BUDGET_BYTES (128 KB),
counted by DynamoDB's published size rules (`stored_size`): the whole item stays some 140 KB
below the limit, and the days' counts of all 120 names over the 93 days kept fit in it (125 KB
with 64-character names and up to a million events of each name every day).

Never dropped: each name's all-time count, first and last times, and each day's count, so every
count and every window over whole days stays exact. Dropped when an event would take the
summaries past BUDGET_BYTES: the times kept of the oldest days first (one day of one name at a
time), down to BUDGET_BYTES - SLACK_BYTES so that the next events fit without another trim.
Only days' counts that alone pass the budget cannot fit (the event is then refused).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from segmentation.event_summaries.stored import kept
from segmentation.vocabulary import is_number

BUDGET_BYTES = 128 * 1024
SLACK_BYTES = 8 * 1024
EVENTS_ATTRIBUTE = "events"
# What one in-place update (storage.events' usual case: n, v and the day's count + 1, `l` set, one
# time appended) may add at most, besides twice the size of the time: three counters growing by
# up to 7 bytes each (below 10**15, 7 bytes cover any +1) and the list element's byte.
_IN_PLACE_OVERHEAD = 3 * 7 + 1


def stored_size(value: Any) -> int:
    """The bytes DynamoDB counts for a value (its attribute name aside): a string its UTF-8 bytes;
    a number 1 byte plus 1 per two significant digits; a boolean or null 1; a list or map 3 plus,
    per element, 1 and the element (with its key, for a map)."""
    if isinstance(value, str):
        return len(value.encode())
    if value is None or isinstance(value, bool):
        return 1
    if isinstance(value, int | float | Decimal):
        return _number_size(value)
    if isinstance(value, Mapping):
        return 3 + sum(len(str(key).encode()) + 1 + stored_size(item) for key, item in value.items())
    if isinstance(value, list | tuple):
        return 3 + sum(1 + stored_size(item) for item in value)
    if isinstance(value, set | frozenset):
        return 3 + sum(1 + stored_size(item) for item in value)
    if isinstance(value, bytes | bytearray):
        return len(value)
    raise TypeError(f"DynamoDB cannot store a {type(value).__name__}")


def _number_size(value: int | float | Decimal) -> int:
    number = (
        value if isinstance(value, Decimal) else Decimal(repr(value) if isinstance(value, float) else value)
    )
    digits = "".join(map(str, number.as_tuple().digits)).strip("0") or "0"
    return 1 + (len(digits) + 1) // 2


def entry_size(name: str, summary: Any) -> int:
    """The bytes one name's summary takes in the `events` map (key and element byte included)."""
    return len(name.encode()) + 1 + stored_size(summary)


def events_size(events: Mapping[str, Any]) -> int:
    """The bytes of the `events` attribute, its name included: what BUDGET_BYTES bounds."""
    return len(EVENTS_ATTRIBUTE) + stored_size(events)


def in_place_growth(at: Decimal) -> int:
    """The most one in-place update with an event at `at` adds to the `events` attribute: the time
    appended, `l` growing to the size of `at` at most, and three counters + 1."""
    return _IN_PLACE_OVERHEAD + 2 * _number_size(at)


def fitted(events: Mapping[str, Any], now: float) -> tuple[dict[str, Any], int] | None:
    """Every summary without its days that left every window, and, when the whole passes
    BUDGET_BYTES, without the times of its oldest days until it takes BUDGET_BYTES - SLACK_BYTES.
    Every summary changed has its version `v` moved on (concurrent writers conditioned on it then
    start again from the new one). Returns (the events, their size), or None when the days'
    counts alone pass the budget."""
    result: dict[str, Any] = {}
    changed: set[str] = set()
    for name, summary in events.items():
        if not isinstance(summary, dict):
            result[name] = summary  # not a summary (junk): kept as found, counted in the size
            continue
        result[name] = kept(summary, now)
        if result[name] != summary:
            changed.add(name)
    size = events_size(result)
    if size > BUDGET_BYTES:
        oldest_first = sorted(
            (int(key), name)
            for name, summary in result.items()
            if isinstance(summary, dict)
            for key in summary["t"]
        )
        for day, name in oldest_first:
            if size <= BUDGET_BYTES - SLACK_BYTES:
                break
            times = dict(result[name]["t"])
            key = str(day)
            size -= len(key) + 1 + stored_size(times.pop(key))
            result[name] = {**result[name], "t": times}
            changed.add(name)
    for name in changed:
        version = result[name].get("v")
        result[name] = {**result[name], "v": (version if is_number(version) else 0) + 1}
    size = events_size(result)
    return (result, size) if size <= BUDGET_BYTES else None
