"""A plain, obviously-correct interpreter of raw filters, used only to check the compiled engine.

Deliberately simple and slow: it walks the raw JSON, looks every value up afresh, follows segment
references by re-evaluating the referenced filter, and reads calendar days with datetime.
It assumes the filter is valid (validate_filter has passed).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from segmentation.engine.fields import FIELD_DEFAULTS, STANDARD_FIELDS
from segmentation.engine.segments import SegmentDef, with_predefined
from segmentation.engine.timestamps import parse_date, parse_timestamp

DAY = 86400.0


def evaluate(
    raw: Mapping[str, Any],
    record: Mapping[str, Any],
    now: float,
    *,
    target: str,
    segments: Mapping[str, SegmentDef],
    attributes: Mapping[str, Mapping[str, str]],
    timezone: str = "UTC",
) -> bool:
    context = _Context(with_predefined(segments.values()), attributes, ZoneInfo(timezone), float(now))
    return context.filter(raw, record, target)


class _Context:
    def __init__(self, segments: Mapping[str, SegmentDef], attributes: Any, zone: ZoneInfo, now: float):
        self.segments, self.attributes, self.zone, self.now = segments, attributes, zone, now

    def filter(self, raw: Mapping[str, Any], record: Mapping[str, Any], target: str) -> bool:
        if "and" in raw:
            return all(self.filter(item, record, target) for item in raw["and"])
        if "or" in raw:
            return any(self.filter(item, record, target) for item in raw["or"])
        if "not" in raw:
            return not self.filter(raw["not"], record, target)
        field, op, value = raw["field"], raw["op"], raw.get("value")
        if field == "segment":
            inside = self.filter(self.segments[str(value)].filter, record, target)
            return inside if op == "in_segment" else not inside
        if field.startswith("company."):
            listed = record.get("companies")
            companies = [c for c in listed if isinstance(c, dict)] if isinstance(listed, list) else []
            return any(
                self.condition(field[8:], op, value, company, "companies") for company in companies or [{}]
            )
        if field.startswith("event."):
            return self.event_condition(field, op, value, raw.get("within_days"), record)
        if field == "tag":
            stored = record.get("tag_ids")
            tagged = isinstance(stored, list | tuple | set | frozenset) and any(
                isinstance(tag, str) and tag == value for tag in stored
            )
            return tagged if op == "has_tag" else not tagged
        return self.condition(field, op, value, record, target)

    def event_condition(
        self, field: str, op: str, value: Any, window: Any, record: Mapping[str, Any]
    ) -> bool:
        """event.<name>.count|first_at|last_at, read plainly from the stored summary."""
        name, _, which = field[len("event.") :].rpartition(".")
        events = record.get("events")
        summary = events.get(name.lower()) if isinstance(events, dict) else None
        summary = summary if isinstance(summary, dict) else None
        if which == "count":
            stored: Any = 0 if summary is None else _plain_count(summary, self.now, window)
            kind = "number"
        else:
            stored = None if summary is None else summary.get("f" if which == "first_at" else "l")
            kind = "timestamp"
        if op == "exists":
            return stored is not None
        if op == "not_exists":
            return stored is None
        known = _known(stored, kind)
        if known is None:
            return op in ("ne", "not_in", "not_contains")
        return _number_op(op, known, value) if kind == "number" else self.timestamp_op(op, known, value)

    def condition(self, field: str, op: str, value: Any, record: Mapping[str, Any], target: str) -> bool:
        if field.startswith("custom_attributes."):
            name = field[len("custom_attributes.") :]
            kind = self.attributes[target][name]
            attributes = record.get("custom_attributes")
            stored = attributes.get(name) if isinstance(attributes, dict) else None
        else:
            kind = STANDARD_FIELDS[target][field]
            stored = record.get(field, FIELD_DEFAULTS.get(field) if target == "users" else None)
        if op == "exists":
            return stored is not None
        if op == "not_exists":
            return stored is None
        known = _known(stored, kind)
        if known is None:
            return op in ("ne", "not_in", "not_contains")
        if kind == "string":
            return _string_op(op, known, value)
        if kind == "number":
            return _number_op(op, known, value)
        if kind == "boolean":
            return known is (op == "is_true")
        return self.timestamp_op(op, known, value)

    def timestamp_op(self, op: str, t: float, value: Any) -> bool:
        now = self.now
        if op == "less_than_days_ago":
            return now - float(value) * DAY < t <= now
        if op == "more_than_days_ago":
            return t < now - float(value) * DAY
        if op == "less_than_days_from_now":
            return now <= t < now + float(value) * DAY
        if op == "more_than_days_from_now":
            return t > now + float(value) * DAY
        if op == "exactly_days_ago":
            today = self.local_date(now)
            return today is not None and self.local_date(t) == today - timedelta(days=int(value))
        if op == "on":
            return self.local_date(t) == self.day_of(value)
        moment = self.moment(value)
        return t < moment if op == "before" else t > moment

    def local_date(self, epoch: float) -> date | None:
        try:
            return datetime.fromtimestamp(epoch, self.zone).date()
        except (OverflowError, ValueError, OSError):
            return None

    def day_of(self, value: Any) -> date | None:
        if isinstance(value, str) and len(value.strip()) == 10:
            return parse_date(value.strip())
        return self.local_date(parse_timestamp(value))

    def moment(self, value: Any) -> float:
        if isinstance(value, str) and len(value.strip()) == 10:
            return datetime.combine(parse_date(value.strip()), time(), tzinfo=self.zone).timestamp()
        return parse_timestamp(value)


def _plain_count(summary: Mapping[str, Any], now: float, window: Any) -> float:
    """All-time count, or the events in (now - window days, now]: a day wholly inside counts all
    its events; a day the window cuts counts its kept times inside, and events beyond the kept
    times when the day starts inside (the engine's documented rule). A part that is not a number
    or a map where one belongs (junk in the item) counts as nothing, as in the engine."""
    if window is None:
        count: Any = summary.get("n")
        return float(count) if _plain_number(count) else 0.0
    low = now - float(window) * DAY
    total = 0.0
    counts = summary.get("d")
    kept_times = summary.get("t")
    if not isinstance(kept_times, dict):
        kept_times = {}
    for key, n in counts.items() if isinstance(counts, dict) else []:
        if not (isinstance(key, str) and key.isascii() and key.isdigit() and _plain_number(n)):
            continue
        start = float(key) * DAY
        end = start + DAY
        kept = kept_times.get(key)
        times = [float(t) for t in kept if _plain_number(t)] if isinstance(kept, list) else []
        if end <= low or start > now:
            continue
        if low < start and end <= now:
            total += float(n)
            continue
        total += len([t for t in times if low < t <= now])
        if low < start <= now:
            total += float(n) - len(times)
    return total


def _plain_number(value: Any) -> bool:
    """An int, float or Decimal that is not a bool or a float NaN."""
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        return False
    return not (isinstance(value, float) and math.isnan(value))


def _known(stored: Any, kind: str) -> Any:
    """The stored value as `kind`, or None when unknown (missing, null, NaN, or another type)."""
    if kind == "string":
        return stored if isinstance(stored, str) else None
    if kind == "boolean":
        return stored if isinstance(stored, bool) else None
    if isinstance(stored, bool):
        return None
    if isinstance(stored, int | float | Decimal):
        number = float(stored)
    elif kind == "timestamp" and isinstance(stored, str):
        try:
            number = parse_timestamp(stored)
        except ValueError:
            return None
    else:
        return None
    return None if math.isnan(number) else number


def _string_op(op: str, known: str, value: Any) -> bool:
    text = known.casefold()
    if op in ("in", "not_in"):
        inside = any(text == item.casefold() for item in value)
        return inside if op == "in" else not inside
    wanted = value.casefold()
    return {
        "eq": text == wanted,
        "ne": text != wanted,
        "contains": wanted in text,
        "not_contains": wanted not in text,
        "starts_with": text.startswith(wanted),
        "ends_with": text.endswith(wanted),
    }[op]


def _number_op(op: str, known: float, value: Any) -> bool:
    if op in ("in", "not_in"):
        inside = any(known == float(item) for item in value)
        return inside if op == "in" else not inside
    wanted = float(value)
    return {
        "eq": known == wanted,
        "ne": known != wanted,
        "gt": known > wanted,
        "gte": known >= wanted,
        "lt": known < wanted,
        "lte": known <= wanted,
    }[op]
