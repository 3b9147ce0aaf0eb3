"""The same segments as GrowthBook conditions, and the records as GrowthBook attributes.

GrowthBook's condition language (MongoDB-like) has no relative dates: a GrowthBook user computes
the instants from the same `now` and passes absolute epoch seconds, which is what this does.
String ops are case-insensitive in our filters, so they become GrowthBook's case-insensitive
operators (`$ini`, `$nini`, `$regexi`, `$notRegexi`). `company.<field>` becomes `$elemMatch` over
the attached `companies`, and a segment reference is inlined (GrowthBook has no references).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from segmentation.engine import PREDEFINED_SEGMENTS, SegmentDef

DAY = 86400.0
_NUMBER_OPS = {
    "eq": "$eq",
    "ne": "$ne",
    "gt": "$gt",
    "gte": "$gte",
    "lt": "$lt",
    "lte": "$lte",
    "in": "$in",
    "not_in": "$nin",
}


def _day_start(epoch: float, days_back: int = 0) -> float:
    day = datetime.fromtimestamp(epoch, UTC).date() - timedelta(days=days_back)
    return datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()


def _instant(value: str) -> float:
    """D of before/after/on (an ISO date or timestamp), as epoch seconds in UTC."""
    if len(value) == 10:
        return datetime.fromisoformat(value).replace(tzinfo=UTC).timestamp()
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def _value_condition(op: str, value: Any, now: float) -> dict[str, Any]:
    """The GrowthBook operator object testing one attribute value."""
    if op == "exists":
        return {"$exists": True}
    if op == "not_exists":
        return {"$exists": False}
    if op == "is_true":
        return {"$eq": True}
    if op == "is_false":
        return {"$eq": False}
    if op in (
        "less_than_days_ago",
        "more_than_days_ago",
        "less_than_days_from_now",
        "more_than_days_from_now",
    ):
        span = float(value) * DAY
        return {
            "less_than_days_ago": {"$gt": now - span, "$lte": now},
            "more_than_days_ago": {"$lt": now - span},
            "less_than_days_from_now": {"$gte": now, "$lt": now + span},
            "more_than_days_from_now": {"$gt": now + span},
        }[op]
    if op == "exactly_days_ago":
        return {"$gte": _day_start(now, int(value)), "$lt": _day_start(now, int(value) - 1)}
    if op in ("before", "after"):
        return {"$lt" if op == "before" else "$gt": _instant(value)}
    if op == "on":
        start = _day_start(_instant(value))
        return {"$gte": start, "$lt": start + DAY}
    if isinstance(value, str) or (isinstance(value, list) and value and isinstance(value[0], str)):
        return _string_condition(op, value)
    return {_NUMBER_OPS[op]: value}


def _string_condition(op: str, value: Any) -> dict[str, Any]:
    if op in ("eq", "ne"):
        return {"$ini" if op == "eq" else "$nini": [value]}
    if op in ("in", "not_in"):
        return {"$ini" if op == "in" else "$nini": list(value)}
    escaped = re.escape(value)
    pattern = {"contains": escaped, "not_contains": escaped, "starts_with": "^" + escaped}.get(op)
    if op == "ends_with":
        pattern = escaped + r"\Z"
    if pattern is None:
        raise ValueError(f"no GrowthBook form for string op {op!r}")
    return {"$notRegexi" if op == "not_contains" else "$regexi": pattern}


def to_condition(node: Mapping[str, Any], now: float, segments: Mapping[str, SegmentDef]) -> dict[str, Any]:
    """A filter (the API's JSON) as a GrowthBook condition with the same answers at `now`."""
    if "and" in node:
        return {"$and": [to_condition(child, now, segments) for child in node["and"]]}
    if "or" in node:
        return {"$or": [to_condition(child, now, segments) for child in node["or"]]}
    if "not" in node:
        return {"$not": to_condition(node["not"], now, segments)}
    field, op, value = node["field"], node["op"], node.get("value")
    if field == "segment":
        inlined = to_condition(segments[str(value)].filter, now, segments)
        return inlined if op == "in_segment" else {"$not": inlined}
    if field.startswith("company."):
        if op in ("ne", "not_in", "not_contains", "not_exists"):
            raise ValueError("company ops true on unknown values are not translated")
        return {"companies": {"$elemMatch": {field.split(".", 1)[1]: _value_condition(op, value, now)}}}
    return {field: _value_condition(op, value, now)}


def conditions_for(custom: tuple[SegmentDef, ...], now: float) -> list[tuple[str, dict[str, Any]]]:
    """(segment id, condition) for the predefined and the given segments, in the engine's order."""
    by_id = {s.id: s for s in (*PREDEFINED_SEGMENTS, *custom)}
    return [(sid, to_condition(definition.filter, now, by_id)) for sid, definition in by_id.items()]


def attributes(value: Any) -> Any:
    """A DynamoDB record as the JSON attributes GrowthBook expects (Decimal -> int/float, set -> list)."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: attributes(v) for k, v in value.items()}
    if isinstance(value, list | set | tuple):
        return [attributes(v) for v in value]
    return value
