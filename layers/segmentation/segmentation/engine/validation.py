"""validate_filter: what saving a segment or running a search checks before anything is evaluated."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from segmentation.engine.model import Filter, segment_references
from segmentation.engine.parse import Attributes, FilterErrors, parse_filter
from segmentation.engine.segments import SegmentDef, find_cycle, raw_references, with_predefined
from segmentation.errors import Invalid


def validate_filter(
    raw: Any,
    *,
    target: str,
    attributes: Attributes,
    segments: Mapping[str, SegmentDef],
    segment_id: str | None = None,
    path: str = "filter",
) -> Filter:
    """Check a filter against the fields, the custom attribute types and the other segments.

    `segment_id` is the id of the segment this filter is being saved to (None for a new segment or
    a search), so that a reference back to it, directly or through others, is caught.
    Raises errors.Invalid (code "invalid_filter") whose details name each bad node by path.
    """
    try:
        tree = parse_filter(raw, target=target, attributes=attributes, path=path)
    except FilterErrors as problems:
        raise _invalid(problems.details) from None
    details = reference_problems(tree, target=target, segments=segments, segment_id=segment_id)
    if details:
        raise _invalid(details)
    return tree


def reference_problems(
    tree: Filter, *, target: str, segments: Mapping[str, SegmentDef], segment_id: str | None
) -> list[dict[str, str]]:
    """Missing segments, segments of the other target, and cycles, as {"path", "message"}."""
    known = with_predefined(segments.values())
    details = direct_reference_problems(tree, target=target, known=known, segment_id=segment_id)
    references = segment_references(tree)
    if details:
        return details
    # The graph as it would be once this filter is saved.
    edges = {sid: raw_references(segment.filter) for sid, segment in known.items()}
    if segment_id is not None:
        edges[segment_id] = [str(c.value) for c in references]
    for condition in references:
        cycle = find_cycle([str(condition.value)], edges)
        if cycle is not None:
            chain = " -> ".join(repr(sid) for sid in cycle)
            through = "this segment" if segment_id in cycle else "other segments"
            details.append(
                {
                    "path": f"{condition.path}.value",
                    "message": f"segment references form a cycle through {through} ({chain}); "
                    "remove one of the references",
                }
            )
            break
    return details


def _invalid(details: list[dict[str, str]]) -> Invalid:
    first = details[0]
    return Invalid(
        f"The filter is not valid: {first['message']} (at {first['path']}).", details, code="invalid_filter"
    )


def direct_reference_problems(
    tree: Filter, *, target: str, known: Mapping[str, SegmentDef], segment_id: str | None
) -> list[dict[str, str]]:
    """References to itself, to missing segments, or to segments of the other target."""
    details: list[dict[str, str]] = []
    for condition in segment_references(tree):
        ref = str(condition.value)
        segment = known.get(ref)
        if ref == segment_id:
            message = f"a segment cannot refer to itself ({ref!r}); refer to other segments only"
        elif segment is None:
            message = f"no segment {ref!r}; refer to an existing {target} segment by its id"
        elif segment.target != target:
            message = (
                f"segment {ref!r} is a {segment.target} segment; a {target} filter can only refer "
                f"to {target} segments"
            )
        else:
            continue
        details.append({"path": f"{condition.path}.value", "message": message})
    return details
