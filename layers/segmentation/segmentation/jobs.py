"""The bodies of the jobs functions pass each other on queues: one model each, used by the
producer (`to_body`) and the consumer (`*_from_body`) alike.

- RebuildQueue: `ScanJob` (a parallel-scan slice of a table: the nightly rebuild, or a large
  segment's build), `CompanyUsersJob` (the users of a large company), `MembersJob` (members to
  reconcile one by one: records that failed inside a slice or a stream batch, parked alone).
- FanoutQueue: `FanoutJob` (a page of a message's audience), `ParkedJob` (a page of a held
  message's parked deliveries, queued again on resume or skipped on delete).
- DeliveryQueue: `DeliveryJob` (one message to one user).
- WebhookQueue: `WebhookJob` (the next attempt of one webhook delivery).
- ImportQueue and ExportQueue: `BulkJob` (the next chunk of a job of the Jobs table: an import,
  tagging by a filter, an export). The ImportQueue also gets the files bucket's S3 event records
  for `uploads/`: an object created there starts the import it is named after.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Annotated, Any, Literal
from urllib.parse import unquote_plus

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from segmentation.vocabulary import Target

# A worker stops and re-queues its cursor with this much of its Lambda time left.
REQUEUE_WHEN_SECONDS_LEFT = 60.0
SCAN_PAGE_LIMIT = 200


class Job(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    def to_body(self) -> str:
        return self.model_dump_json(exclude_none=False)


class ScanJob(Job):
    kind: Literal["scan"] = "scan"
    run_id: str
    target: Target
    segment: int = Field(ge=0)
    total_segments: int = Field(ge=1)
    cursor: dict[str, Any] | None = None  # the slice's LastEvaluatedKey
    # Why the changes it finds happen (storage.changes.Cause): the nightly rebuild, or a build.
    cause: Literal["rebuild", "segment_created", "segment_edited"] = "rebuild"
    # The segments `cause` is about (a build: the segment and those referring to it); None: all.
    scope: list[str] | None = None


class CompanyUsersJob(Job):
    kind: Literal["company_users"] = "company_users"
    company_id: str
    cursor: str | None = None  # a page cursor of the company's users


class MembersJob(Job):
    kind: Literal["members"] = "members"
    target: Target
    member_ids: list[str] = Field(min_length=1)


RebuildJob = Annotated[ScanJob | CompanyUsersJob | MembersJob, Field(discriminator="kind")]


class FanoutJob(Job):
    message_id: str
    kind: Literal["manual", "auto"]
    at: float  # the instant of the send or of going live: the audience is taken at it
    cursor: str | dict[str, Any] | None = None  # members cursor, or a users scan's LastEvaluatedKey


class ParkedJob(Job):
    """The next page of a message's parked deliveries (each page leaves the parked set)."""

    message_id: str
    kind: Literal["resume", "drop"]  # queue them again / record them as skipped (message deleted)


FanoutQueueJob = Annotated[FanoutJob | ParkedJob, Field(discriminator="kind")]


class DeliveryJob(Job):
    message_id: str
    user_id: str


class WebhookJob(Job):
    """Try a webhook delivery now, if its next attempt is due (changes.deliveries.attempt)."""

    webhook_id: str
    delivery_id: str
    # The delivery's due time this job was sent for (epoch seconds, to the ms, as text): the job
    # may take the attempt then, even if a run of the retry schedule moved it a little later.
    due_at: str


class BulkJob(Job):
    """Run job `job_id` from its chunk `step` on (segmentation.segments.bulk)."""

    job_id: str = Field(min_length=1, max_length=64)
    step: int = Field(ge=0)


# The files bucket's keys of uploads: uploads/<job id>.csv (storage.files writes them).
UPLOADS = "uploads/"
CSV_SUFFIX = ".csv"


def upload_key(job_id: str) -> str:
    return f"{UPLOADS}{job_id}{CSV_SUFFIX}"


def job_of_upload(key: str) -> str | None:
    """The job an uploads/ key belongs to (S3 events give keys URL-encoded), or None."""
    key = unquote_plus(key)
    if not key.startswith(UPLOADS) or not key.endswith(CSV_SUFFIX):
        return None
    job_id = key[len(UPLOADS) : -len(CSV_SUFFIX)]
    return job_id if job_id and "/" not in job_id else None


def bulk_jobs_from_body(body: str) -> list[BulkJob]:
    """The jobs an ImportQueue or ExportQueue message asks for: a BulkJob, or the first chunk of
    each import whose file an S3 event record says was created (S3's test event asks for none).
    ValueError for anything else."""
    parsed = json.loads(body)
    if isinstance(parsed, dict) and "Records" in parsed:
        found = []
        for record in parsed["Records"]:
            if record.get("eventSource") != "aws:s3" or not str(record.get("eventName", "")).startswith(
                "ObjectCreated"
            ):
                continue
            job_id = job_of_upload(str(record["s3"]["object"]["key"]))
            if job_id is not None:
                found.append(BulkJob(job_id=job_id, step=0))
        return found
    if isinstance(parsed, dict) and parsed.get("Event") == "s3:TestEvent":
        return []
    return [BulkJob.model_validate(parsed)]


@cache
def _rebuild_adapter() -> TypeAdapter[ScanJob | CompanyUsersJob | MembersJob]:
    return TypeAdapter(RebuildJob)


def rebuild_job_from_body(body: str) -> ScanJob | CompanyUsersJob | MembersJob:
    return _rebuild_adapter().validate_json(body)


@cache
def _fanout_adapter() -> TypeAdapter[FanoutJob | ParkedJob]:
    return TypeAdapter(FanoutQueueJob)


def fanout_job_from_body(body: str) -> FanoutJob | ParkedJob:
    return _fanout_adapter().validate_json(body)


def delivery_job_from_body(body: str) -> DeliveryJob:
    return DeliveryJob.model_validate_json(body)


def webhook_job_from_body(body: str) -> WebhookJob:
    return WebhookJob.model_validate_json(body)


def scan_jobs(
    run_id: str,
    workers: int,
    targets: tuple[Target, ...] = ("users", "companies"),
    cause: Literal["rebuild", "segment_created", "segment_edited"] = "rebuild",
    scope: list[str] | None = None,
) -> list[ScanJob]:
    """One job per parallel-scan segment of each target table."""
    return [
        ScanJob(run_id=run_id, target=target, segment=i, total_segments=workers, cause=cause, scope=scope)
        for target in targets
        for i in range(workers)
    ]
