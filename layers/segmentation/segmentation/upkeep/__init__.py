"""Segment upkeep: stored membership kept in step with users, companies, segments and time.

`build_segment` / `drop_segment` are imported lazily so that storage modules can use the pure
types of `segmentation.upkeep.diff` without an import cycle.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from segmentation.engine import Workspace
    from segmentation.upkeep.build import BuildResult, SegmentLike

__all__ = ["build_segment", "drop_segment"]


def build_segment(
    segment: SegmentLike, previous: SegmentLike | None, now: float, workspace: Workspace | None = None
) -> BuildResult:
    """Build a created or edited segment's membership (inline when small, else on the RebuildQueue)."""
    from segmentation.upkeep import build

    return build.build_segment(segment, previous, now, workspace)


def drop_segment(segment_id: str) -> Any:
    """Remove a deleted segment's memberships and its count."""
    from segmentation.upkeep import build

    return build.drop_segment(segment_id)
