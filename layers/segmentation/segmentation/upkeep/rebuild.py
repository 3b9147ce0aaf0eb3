"""Running rebuild jobs (segmentation.jobs): a slice of a table, or a company's users.

A worker that runs low on time returns the same job with its cursor, to re-queue.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from segmentation.engine import Workspace
from segmentation.engine.fields import Target
from segmentation.jobs import COMPANY_USERS, REQUEUE_WHEN_SECONDS_LEFT, SCAN, SCAN_PAGE_LIMIT
from segmentation.storage import upkeep_records
from segmentation.upkeep.company_users import refresh_company_users
from segmentation.upkeep.refresh import Outcome, refresh_many

logger = logging.getLogger(__name__)


def run_job(
    workspace: Workspace, job: Mapping[str, Any], now: float, time_left: Callable[[], float]
) -> dict[str, Any] | None:
    """Do a job until it is done (None) or time runs low (the same job with its cursor, to re-queue)."""
    if job["kind"] == COMPANY_USERS:
        rest = refresh_company_users(
            workspace, job["company_id"], now, job.get("cursor"), time_left, inline=True
        )
        return None if rest is None else {**job, "cursor": rest}
    if job["kind"] != SCAN:
        raise ValueError(f"unknown rebuild job kind {job['kind']!r}")
    target: Target = job["target"]
    cursor = job.get("cursor")
    tally = dict.fromkeys(Outcome, 0)
    while True:
        records, cursor = upkeep_records.scan_slice(
            target, int(job["segment"]), int(job["total_segments"]), cursor, SCAN_PAGE_LIMIT
        )
        for outcome, n in refresh_many(workspace, target, records, now).items():
            tally[outcome] += n
        if cursor is None:
            logger.info(
                "rebuild slice done",
                extra={"job": dict(job), "tally": {o.value: n for o, n in tally.items()}},
            )
            return None
        if time_left() < REQUEUE_WHEN_SECONDS_LEFT:
            return {**job, "cursor": cursor}
