"""Build a segment's membership when it is created or its filter edited; drop it when deleted."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from segmentation import definitions, jobs
from segmentation.engine import Workspace
from segmentation.engine.segments import dependents
from segmentation.settings import get_settings
from segmentation.storage import membership_writes, people_scans, queues
from segmentation.upkeep.refresh import current_workspace, refresh_many
from segmentation.vocabulary import Target

logger = logging.getLogger(__name__)
BuildCause = Literal["segment_created", "segment_edited"]


class SegmentLike(Protocol):
    """What a build needs of segmentation.engine.SegmentDef."""

    @property
    def id(self) -> str: ...

    @property
    def target(self) -> str: ...

    @property
    def filter(self) -> Any: ...


@dataclass(frozen=True)
class BuildResult:
    mode: str  # "unchanged", "inline" or "queued"
    scanned: int = 0
    jobs: int = 0


def build_segment(
    segment: SegmentLike, previous: SegmentLike | None, now: float, workspace: Workspace | None = None
) -> BuildResult:
    """Bring stored membership in line with a created or edited segment.

    Every record is evaluated against the whole workspace, so segments that refer to this one
    (directly or not) are rebuilt in the same pass. Up to settings.inline_build_limit records
    are done within the call; beyond that the work goes to the rebuild workers.
    """
    if previous is not None and previous.filter == segment.filter:
        return BuildResult("unchanged")
    workspace = workspace or current_workspace()
    cause: BuildCause = "segment_created" if previous is None else "segment_edited"
    scope = affected_by(segment.id)
    target: Target = "companies" if segment.target == "companies" else "users"
    settings = get_settings()
    limit = settings.inline_build_limit
    if people_scans.approximate_count(target) <= limit:
        scanned, cursor = 0, None
        while scanned <= limit:
            records, cursor = people_scans.scan_slice(target, 0, 1, cursor, jobs.SCAN_PAGE_LIMIT)
            refresh_many(workspace, target, records, now, cause, scope)
            scanned += len(records)
            if cursor is None:
                return BuildResult("inline", scanned=scanned)
        logger.info("segment build outgrew the inline limit; fanning out", extra={"segment": segment.id})
    build_jobs = jobs.scan_jobs(
        f"build:{segment.id}:{now:.3f}", settings.rebuild_workers, (target,), cause, sorted(scope)
    )
    queues.send_rebuild_jobs(build_jobs)
    return BuildResult("queued", jobs=len(build_jobs))


def affected_by(segment_id: str) -> frozenset[str]:
    """The segment and every segment referring to it, at any depth: what its build may move for
    its own sake (a change of any other segment found meanwhile has another cause)."""
    filters = {record.id: record.filter for record in definitions.records(check_now=True)}
    found = {segment_id}
    pending = [segment_id]
    while pending:
        for dependent in dependents(pending.pop(), filters):
            if dependent not in found:
                found.add(dependent)
                pending.append(dependent)
    return frozenset(found)


def drop_segment(segment_id: str) -> int:
    """Remove a deleted segment's memberships and count; returns how many members it had."""
    return membership_writes.drop_group(segment_id)
