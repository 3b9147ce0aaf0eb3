"""Who a message is for: checking an audience at creation, and one filter that means it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from segmentation import definitions, errors
from segmentation.engine import Workspace, validate_filter
from segmentation.messaging.model import Audience
from segmentation.people.attributes import all_types as all_attribute_types


def check(audience: Audience) -> None:
    """The segment must exist and hold users; the filter must be a valid user filter."""
    if audience.segment_id is not None:
        segment = definitions.get(audience.segment_id, check_now=True)
        target = None if segment is None else segment.target
        if target is None:
            raise errors.Invalid(
                f"There is no segment '{audience.segment_id}'.",
                [{"path": "audience.segment_id", "message": "no such segment"}],
            )
        if target != "users":
            raise errors.Invalid(
                f"Segment '{audience.segment_id}' holds {target}; messages go to users.",
                [{"path": "audience.segment_id", "message": "must be a segment of users"}],
            )
    if audience.filter is not None:
        validate_filter(
            audience.filter,
            target="users",
            attributes=all_attribute_types(audience.filter),
            segments=definitions.segment_defs(check_now=True),
            path="audience.filter",
        )


def predicate(workspace: Workspace, audience: Audience) -> Callable[[Any, float], bool]:
    """`(user record, now) -> bool`: in the segment (by its meaning now) and matching the filter.
    The two are evaluated side by side: wrapped in one `and`, a filter at the bounds it was
    checked against (6 levels, 100 conditions) would be one level and one condition over them."""
    parts = []
    if audience.segment_id is not None:
        parts.append(
            workspace.predicate({"field": "segment", "op": "in_segment", "value": audience.segment_id})
        )
    if audience.filter is not None:
        parts.append(workspace.predicate(audience.filter, "users"))
    if len(parts) == 1:
        return parts[0]
    in_segment, matches = parts
    return lambda record, now: in_segment(record, now) and matches(record, now)


def as_filter(audience: Audience) -> dict[str, Any]:
    """One user filter meaning "in the audience": membership of the segment (by its meaning, at
    the instant of evaluation) and the filter. With both, it nests one level deeper than the
    filter: evaluate an audience with `predicate`."""
    parts: list[dict[str, Any]] = []
    if audience.segment_id is not None:
        parts.append({"field": "segment", "op": "in_segment", "value": audience.segment_id})
    if audience.filter is not None:
        parts.append(audience.filter)
    return parts[0] if len(parts) == 1 else {"and": parts}
