"""Shared helpers for the engine tests: evaluate a filter with the compiled engine and the reference."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from segmentation.engine import SegmentDef, Workspace, parse_timestamp, validate_filter
from segmentation.engine.reference import evaluate

DAY = 86400.0
NOW = parse_timestamp("2026-11-28T12:00:00Z")
ATTRIBUTES: dict[str, dict[str, str]] = {
    "users": {
        "plan": "string",
        "photos_uploaded": "number",
        "downloaded_mobile_app": "boolean",
        "trial_ends_at": "timestamp",
    },
    "companies": {"tier": "string", "seats": "number", "churned": "boolean", "renewed_at": "timestamp"},
    "events": {"uploaded_photo": "event", "invited.teammate": "event"},
    "tags": {"tag_vip": "tag", "tag_beta": "tag"},
}


def both(
    raw: Mapping[str, Any],
    record: Mapping[str, Any],
    now: float = NOW,
    *,
    target: str = "users",
    segments: Iterable[SegmentDef] = (),
    timezone: str = "UTC",
) -> bool:
    """The compiled engine's answer, after checking that validation passes and the reference agrees."""
    segments = list(segments)
    by_id = {s.id: s for s in segments}
    validate_filter(raw, target=target, attributes=ATTRIBUTES, segments=by_id)
    workspace = Workspace(segments, timezone=timezone, attributes=ATTRIBUTES)
    compiled = workspace.predicate(raw, target)(record, now)
    lenient = Workspace(segments, timezone=timezone).predicate(raw, target)(record, now)
    expected = evaluate(
        raw, record, now, target=target, segments=by_id, attributes=ATTRIBUTES, timezone=timezone
    )
    assert compiled == expected, f"compiled {compiled} != reference {expected} for {raw} on {record}"
    assert lenient == compiled, "inferring custom attribute types changed the answer"
    return compiled


def cond(field: str, op: str, value: Any = None) -> dict[str, Any]:
    condition: dict[str, Any] = {"field": field, "op": op}
    if value is not None:
        condition["value"] = value
    return condition
