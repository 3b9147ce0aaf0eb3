"""How a job of the Jobs table runs: a chunk at a time, resumed where it stopped, each chunk
counted once whatever SQS delivers.

A job is at a `step` (the chunks committed so far) with a `cursor` (where the next chunk
starts). A message `BulkJob(job_id, step)` asks for the job to go on from that step:

1. the job is read; ended, or at another step → nothing to do (a duplicate, or a redelivery
   after the work went on), except that a message one step or more behind, for a job nobody
   holds and whose latest step was never queued, queues that step (the worker before stopped
   between committing a chunk and queuing the next: nothing is lost);
2. the worker takes the job's lease (a conditional write: one worker at a time), then runs
   chunks, committing each in one conditional write (its step and its lease), until the job
   ends or its time runs low; then it gives the lease up, queues the next step and notes it.
A chunk that raises gives the lease up, so that the message's retry can take it again. A
domain error (the file is not a CSV, a filter names a segment that is gone) ends the job as
failed, saying why; the worker of the message's last attempt ends it as failed too, rather than
leave it running forever once the message goes to the dead-letter queue.

A chunk is idempotent: it may be run again from the same cursor (after a crash before its
commit) and writes the same thing (imports are upserts, tags are sets, an export's part number
is its place).
"""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Callable, Mapping
from typing import Protocol

from aws_lambda_powertools import Logger

from segmentation import clock, errors
from segmentation.jobs import REQUEUE_WHEN_SECONDS_LEFT, BulkJob, bulk_jobs_from_body
from segmentation.people import imports
from segmentation.segments import exports, tags
from segmentation.storage import jobs as job_store
from segmentation.storage import queues
from segmentation.storage.jobs import JobRecord, Progress

logger = Logger(child=True)

# A lease outlives its worker's invocation by this much (a Lambda is stopped at its timeout).
LEASE_MARGIN_SECONDS = 30.0
EXPORT_KINDS = frozenset({"export"})


class Chunk(Protocol):
    def __call__(self, job: JobRecord, now: float, time_left: Callable[[], float]) -> Progress: ...


CHUNKS: Mapping[str, Chunk] = {
    "import": imports.chunk,
    "tag": tags.chunk,
    "untag": tags.chunk,
    "export": exports.chunk,
}


# The queues' maxReceiveCount (template.yaml): a message received this often is on its last try.
MAX_RECEIVES = 5


def run_message(body: str, time_left: Callable[[], float], receive_count: int) -> list[str]:
    """Run what one ImportQueue or ExportQueue message asks for (BulkJob bodies, or the files
    bucket's S3 event records); what happened to each job. ValueError for a body that is neither."""
    return [
        run(job, time_left, last_attempt=receive_count >= MAX_RECEIVES) for job in bulk_jobs_from_body(body)
    ]


def queue(job: BulkJob, kind: str) -> None:
    queues.send_bulk_job(job, export=kind in EXPORT_KINDS)


def run(message: BulkJob, time_left: Callable[[], float], *, last_attempt: bool = False) -> str:
    """Run the job from the message's step as far as time allows; what happened (for logs)."""
    job = job_store.get(message.job_id)
    if job is None:
        return "unknown"
    if job.state != "running":
        return "ended"
    now = clock.now()
    if message.step != job.step:
        if message.step < job.step and not job.leased(now) and job.queued_step < job.step:
            _queue_next(job)
            return "queued again"
        return "stale"
    owner = secrets.token_hex(8)
    claimed = job_store.claim(job.id, job.step, owner, now + time_left() + LEASE_MARGIN_SECONDS, now)
    if claimed is None:
        return "busy"
    try:
        return _chunks(claimed, owner, time_left)
    except errors.DomainError as refused:
        job_store.fail(job.id, refused.code, refused.message, clock.now(), _errors_of(refused))
        return "failed"
    except Exception:
        if last_attempt:
            job_store.fail(
                job.id, "internal_error", "The job failed on our side; start it again.", clock.now()
            )
        else:
            job_store.release(job.id, claimed.step, owner)
        raise


def _chunks(job: JobRecord, owner: str, time_left: Callable[[], float]) -> str:
    chunk = CHUNKS[job.kind]
    while True:
        now = clock.now()
        progress = chunk(job, now, time_left)
        if not job_store.advance(job.id, job.step, owner, progress, now):
            return "lost its lease"
        job = dataclasses.replace(
            job,
            step=job.step + 1,
            cursor=progress.cursor,
            done=progress.done,
            total=progress.total,
            rejected=progress.rejected,
            errors=progress.errors,
            params=job.params if progress.params is None else progress.params,
        )
        if progress.state is not None:
            logger.info("job ended", extra={"job_id": job.id, "kind": job.kind, "state": progress.state})
            return progress.state
        if time_left() < REQUEUE_WHEN_SECONDS_LEFT:
            break
    job_store.release(job.id, job.step, owner)
    _queue_next(job)
    return "queued its next chunk"


def _queue_next(job: JobRecord) -> None:
    queue(BulkJob(job_id=job.id, step=job.step), job.kind)
    job_store.mark_queued(job.id, job.step)


def _errors_of(refused: errors.DomainError) -> list[dict[str, object]] | None:
    """The rows a job-ending error names ({"line", "reason"}), when it names any."""
    rows = [
        {"line": detail["line"], "reason": str(detail.get("reason") or detail.get("message"))}
        for detail in refused.details or []
        if isinstance(detail.get("line"), int)
    ]
    return rows or None


# --- what GET /v1/jobs/{job_id} shows ---------------------------------------------------------

# An import whose file never came: failed once its upload URL is this long expired (a PUT begun
# just before the URL expired has had its time).
UPLOAD_GRACE_SECONDS = 3600.0


def describe(job_id: str, now: float) -> dict[str, object]:
    """{"id", "kind", "state", "done", "total", "errors", "result"} (API.md); 404 job_not_found."""
    job = job_store.get(job_id)
    if job is None:
        raise errors.NotFound(f"No job has the id '{job_id}'.", code="job_not_found")
    state, result = job.state, job.result
    if job.kind == "export" and state == "done":
        result = exports.result_of(job, now)
    expires = job.params.get("upload_expires_at")
    waiting = job.kind == "import" and job.step == 0 and not job.leased(now) and state == "running"
    if waiting and isinstance(expires, int | float) and now > expires + UPLOAD_GRACE_SECONDS:
        state = "failed"
        result = {
            "error": {
                "code": "no_upload",
                "message": "No file was uploaded before the upload URL expired: start a new import.",
            }
        }
    return {
        "id": job.id,
        "kind": job.kind,
        "state": state,
        "done": job.done,
        "total": job.total,
        "errors": [{"line": int(e["line"]), "reason": str(e["reason"])} for e in job.errors],
        "result": result,
    }
