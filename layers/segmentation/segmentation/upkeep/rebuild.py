"""Running rebuild jobs (segmentation.jobs): a slice of a table, a company's users, or members
parked alone.

A worker that runs low on time returns the same job with its cursor, to re-queue. Within a
slice each record is isolated: one that keeps failing is parked as a MembersJob of its own and
the rest of the slice completes. A MembersJob lets its failure propagate, so the queue retries
that one member and finally keeps it in the dead-letter queue.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from segmentation.jobs import (
    REQUEUE_WHEN_SECONDS_LEFT,
    SCAN_PAGE_LIMIT,
    CompanyUsersJob,
    MembersJob,
    ScanJob,
    scan_jobs,
)
from segmentation.storage import people_scans, queues
from segmentation.upkeep.company_users import refresh_company_users
from segmentation.upkeep.members import reconcile
from segmentation.upkeep.refresh import Outcome, RefreshRun

logger = logging.getLogger(__name__)

RebuildJob = ScanJob | CompanyUsersJob | MembersJob


def run_and_requeue(job: RebuildJob, now: float, time_left: Callable[[], float]) -> RebuildJob | None:
    """`run_job`, and the rest of the job (time ran low) queued again with its cursor; returns it."""
    rest = run_job(job, now, time_left)
    if rest is not None:
        queues.send_rebuild_jobs([rest])
    return rest


def queue_nightly_rebuild(run_id: str, workers: int) -> int:
    """Queue the nightly rebuild: one job per parallel-scan segment of each table. Returns how many."""
    planned = scan_jobs(run_id, workers)
    queues.send_rebuild_jobs(planned)
    return len(planned)


def run_job(job: RebuildJob, now: float, time_left: Callable[[], float]) -> RebuildJob | None:
    """Do a job until it is done (None) or time runs low (the same job with its cursor, to re-queue)."""
    if isinstance(job, MembersJob):
        upkeep = RefreshRun()
        for member_id in job.member_ids:
            reconcile(upkeep, job.target, member_id, now)  # a correction: cause `rebuild` (or `time`)
        upkeep.finish()
        return None
    if isinstance(job, CompanyUsersJob):
        upkeep = RefreshRun()
        rest = refresh_company_users(upkeep, job.company_id, now, job.cursor, time_left, inline=True)
        upkeep.finish()
        return None if rest is None else job.model_copy(update={"cursor": rest})
    cursor = job.cursor
    tally = dict.fromkeys(Outcome, 0)
    while True:
        records, cursor = people_scans.scan_slice(
            job.target, job.segment, job.total_segments, cursor, SCAN_PAGE_LIMIT
        )
        upkeep = RefreshRun()
        scope = None if job.scope is None else frozenset(job.scope)
        upkeep.refresh_many(job.target, records, now, job.cause, scope)
        upkeep.finish()
        for outcome, n in upkeep.tally.items():
            tally[outcome] += n
        if cursor is None:
            logger.info(
                "rebuild slice done",
                extra={"run_id": job.run_id, "target": job.target, "segment": job.segment}
                | {o.value: n for o, n in tally.items()},
            )
            return None
        if time_left() < REQUEUE_WHEN_SECONDS_LEFT:
            return job.model_copy(update={"cursor": cursor})
