"""Reading recorded changes: a member's history, a segment's feed, a segment's days.

No boto3: storage.changes holds the changes, storage.membership_stats the counts and daily stats.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from segmentation import definitions, errors
from segmentation.storage import changes, cursors, membership_stats
from segmentation.storage import companies as company_store
from segmentation.storage import users as user_store
from segmentation.storage.changes import FeedPosition
from segmentation.values import format_timestamp, parse_timestamp

MAX_STATS_DAYS = 90
_UNIX_SECONDS = re.compile(r"-?[0-9]{1,12}(\.[0-9]{1,6})?")
_LAST_MS = 10**15 - 1  # feed keys hold 15 digits of ms (the year 33658)
_HISTORY_KEY = ("pair", "sequence", "member", "feed")


def change_json(item: Mapping[str, Any]) -> dict[str, Any]:
    """A recorded change as API.md shows it."""
    return {
        "segment_id": str(item["segment_id"]),
        "target": str(item["target"]),
        "member_id": str(item["member_id"]),
        "change": str(item["change"]),
        "at": format_timestamp(Decimal(item["at"])),
        "cause": str(item["cause"]),
        "sequence": int(item["sequence"]),
    }


# ---- a member's history ------------------------------------------------------------------------


def member_history(target: str, member_id: str, limit: int, cursor: str | None) -> dict[str, Any]:
    """A user's or company's changes, newest first. A member that does not exist and never had a
    change kept is a 404; a deleted one keeps its history (API.md)."""
    start = _history_start(target, member_id, cursor)
    items, last = changes.member_page(target, member_id, limit, start)
    if start is None and not items and _absent(target, member_id):
        what = "user" if target == "users" else "company"
        raise errors.NotFound(f"No {what} has the id {member_id!r}.", code=f"{what}_not_found")
    next_cursor = None
    if last is not None:
        next_cursor = cursors.encode({"h": {key: last[key] for key in _HISTORY_KEY}})
    return {"data": [change_json(item) for item in items], "next_cursor": next_cursor}


def _history_start(target: str, member_id: str, cursor: str | None) -> dict[str, Any] | None:
    if not cursor:
        return None
    key = cursors.decode(cursor, fields={"h": dict})["h"]
    if set(key) != set(_HISTORY_KEY):
        raise cursors.InvalidCursor()
    if key["member"] != changes.member_key(target, member_id):
        raise cursors.InvalidCursor("This cursor is of another user's or company's history.")
    return key


def _absent(target: str, member_id: str) -> bool:
    found = user_store.get(member_id) if target == "users" else company_store.get(member_id)
    return found is None


# ---- a segment's feed --------------------------------------------------------------------------


def segment_feed(
    segment_id: str,
    *,
    since: str | None,
    change: str | None,
    limit: int,
    cursor: str | None,
    now: float,
) -> dict[str, Any]:
    """A segment's changes, oldest first, from `since` (or the oldest kept) or where `cursor`
    stood. `next_cursor` is always given: kept, it reads what came after (a feed)."""
    if cursor:
        position, change = _feed_cursor(segment_id, cursor, since, change)
    else:
        position = FeedPosition(since_ms=0 if since is None else _since_ms(since))
    items, after = changes.feed_page(segment_id, position, change, limit, now)
    kept = {"segment": segment_id, "change": change, "position": after.to_json()}
    return {"data": [change_json(item) for item in items], "next_cursor": cursors.encode({"f": kept})}


def _since_ms(text: str) -> int:
    """`since` in ms, within what a feed key can hold."""
    return min(max(int(_since(text) * 1000), 0), _LAST_MS)


def _since(text: str) -> Decimal:
    try:
        return parse_timestamp(Decimal(text) if _UNIX_SECONDS.fullmatch(text) else text)
    except (ValueError, TypeError, ArithmeticError, errors.Invalid):
        raise errors.Invalid(
            "since must be a timestamp: ISO 8601 with an offset or Z, or Unix seconds.",
            [{"path": "since", "message": "not a timestamp"}],
        ) from None


def _feed_cursor(
    segment_id: str, cursor: str, since: str | None, change: str | None
) -> tuple[FeedPosition, str | None]:
    """The position a feed cursor holds, and the change filter it carries. A `since` or `change`
    sent with it must agree with what it carries (422 otherwise)."""
    feed = cursors.decode(cursor, fields={"f": dict})["f"]
    if feed.get("segment") != segment_id:
        raise cursors.InvalidCursor()
    try:
        position = FeedPosition.from_json(feed["position"])
    except (KeyError, TypeError, ValueError) as error:
        raise cursors.InvalidCursor() from error
    carried = feed.get("change")
    if change is not None and change != carried:
        raise errors.Invalid(
            "This cursor reads changes of another kind: leave change out, or start again without a cursor.",
            [{"path": "change", "message": f"the cursor carries change={carried}"}],
        )
    if since is not None and _since_ms(since) != position.since_ms:
        raise errors.Invalid(
            "This cursor reads from another instant; leave since out, or start again without a cursor.",
            [{"path": "since", "message": "the cursor carries another since"}],
        )
    return position, carried


# ---- a segment's days --------------------------------------------------------------------------


def segment_stats(segment_id: str, days: int, now: float, created_at: float | None) -> dict[str, Any]:
    """One row a UTC day, oldest first, for the last `days` days up to today: the count at the
    end of the day (today: now; 0 before the segment existed), and the day's entries and exits.

    Counts run back from the exact count now through each later day's recorded changes, which
    move the count in the same transaction as they are recorded. The days not yet settled by the
    nightly rebuild are still on the count item; the others are its stats rows."""
    today = datetime.fromtimestamp(now, UTC).date()
    first = today - timedelta(days=days - 1)
    count, pending = membership_stats.day_counts(segment_id)
    per_day = membership_stats.settled_days(segment_id, first.isoformat(), today.isoformat())
    for name, moved in pending.items():
        known = per_day.setdefault(name, {"entered": 0, "exited": 0})
        known["entered"] += moved["entered"]
        known["exited"] += moved["exited"]
    born = None if created_at is None else datetime.fromtimestamp(created_at, UTC).date()
    rows: list[dict[str, Any]] = []
    day: date = today
    while day >= first:
        moved = per_day.get(day.isoformat(), {"entered": 0, "exited": 0})
        existed = born is None or day >= born
        rows.append(
            {
                "date": day.isoformat(),
                "count": max(count, 0) if existed else 0,
                "entered": moved["entered"],
                "exited": moved["exited"],
            }
        )
        count -= moved["entered"] - moved["exited"]
        day -= timedelta(days=1)
    return {"data": rows[::-1]}


def settle_days(now: float) -> int:
    """The nightly rebuild's share: every segment's finished UTC days move off its count item
    into their stats rows (storage.membership_stats.settle_days). Returns the days moved."""
    today = datetime.fromtimestamp(now, UTC).date().isoformat()
    return sum(
        membership_stats.settle_days(record.id, today) for record in definitions.records(check_now=True)
    )
