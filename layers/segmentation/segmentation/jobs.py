"""The bodies of the jobs functions pass each other on queues: one model each, used by the
producer (`to_body`) and the consumer (`*_from_body`) alike.

- RebuildQueue: `ScanJob` (a parallel-scan slice of a table: the nightly rebuild, or a large
  segment's build), `CompanyUsersJob` (the users of a large company), `MembersJob` (members to
  reconcile one by one: records that failed inside a slice or a stream batch, parked alone).
- FanoutQueue: `FanoutJob` (a page of a message's audience), `ParkedJob` (a page of a held
  message's parked deliveries, queued again on resume or skipped on delete).
- DeliveryQueue: `DeliveryJob` (one message to one user).
- WebhookQueue: `WebhookJob` (the next attempt of one webhook delivery).
"""

from __future__ import annotations

from functools import cache
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from segmentation.engine.fields import Target

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
