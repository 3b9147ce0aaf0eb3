"""Rebuild jobs: what the coordinator, segment builds and big companies put on the RebuildQueue.

A job is a JSON object; a worker that runs low on time re-queues the same job with its cursor.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from segmentation.engine import Workspace
from segmentation.storage import upkeep_records
from segmentation.upkeep.diff import Target
from segmentation.upkeep.refresh import Outcome, refresh_many

logger = logging.getLogger(__name__)

SCAN = "scan"
COMPANY_USERS = "company_users"
# A worker stops and re-queues its cursor with this much of its Lambda time left.
REQUEUE_WHEN_SECONDS_LEFT = 60.0
SCAN_PAGE_LIMIT = 200


def scan_jobs(
    run_id: str, workers: int, targets: Sequence[Target] = ("users", "companies")
) -> list[dict[str, Any]]:
    """One job per parallel-scan segment of each target table."""
    return [
        {
            "kind": SCAN,
            "run_id": run_id,
            "target": target,
            "segment": i,
            "total_segments": workers,
            "cursor": None,
        }
        for target in targets
        for i in range(workers)
    ]


def company_users_job(company_id: str, cursor: str | None = None) -> dict[str, Any]:
    return {"kind": COMPANY_USERS, "company_id": company_id, "cursor": cursor}


def run_job(
    workspace: Workspace, job: Mapping[str, Any], now: float, time_left: Callable[[], float]
) -> dict[str, Any] | None:
    """Do a job until it is done (None) or time runs low (the same job with its cursor, to re-queue)."""
    if job["kind"] == COMPANY_USERS:
        from segmentation.upkeep.stream import refresh_company_users

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
