"""The SQS work queues: RebuildQueue, FanoutQueue, DeliveryQueue, WebhookQueue, ImportQueue and
ExportQueue (bodies: segmentation.jobs), and DeliveryQueue's dead-letter queue, which the
reconciler drains.

A job that cannot be queued raises errors.Retryable, so the caller's own work is retried: a
duplicate job is harmless (every consumer is idempotent), a lost one is not.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Sequence

from botocore.exceptions import ClientError

from segmentation import errors
from segmentation.jobs import (
    BulkJob,
    DeliveryJob,
    FanoutJob,
    Job,
    ParkedJob,
    WebhookJob,
    delivery_job_from_body,
)
from segmentation.settings import get_settings
from segmentation.storage import aws, dynamo

_BATCH = 10  # SendMessageBatch takes at most 10 entries
_ATTEMPTS = 6


# SQS delays a message by at most 15 minutes.
MAX_DELAY_SECONDS = 900


def _send(url: str, jobs: Sequence[Job], delay_seconds: int = 0) -> None:
    """SendMessageBatch, 10 a call, resending the entries a batch reports failed."""
    if not url:
        raise errors.Retryable("the queue's URL is not set")
    sqs = aws.client("sqs")
    for start in range(0, len(jobs), _BATCH):
        delay = max(0, min(int(delay_seconds), MAX_DELAY_SECONDS))
        entries = [
            {"Id": str(i), "MessageBody": job.to_body(), "DelaySeconds": delay}
            for i, job in enumerate(jobs[start : start + _BATCH])
        ]
        for attempt in range(_ATTEMPTS):
            try:
                answer = sqs.send_message_batch(QueueUrl=url, Entries=entries)
            except ClientError as error:
                raise errors.Retryable(f"SQS refused a batch: {dynamo.error_code(error)}") from error
            failed = {f["Id"] for f in answer.get("Failed", [])}
            entries = [e for e in entries if e["Id"] in failed]
            if not entries:
                break
            dynamo.backoff(attempt)
        else:
            raise errors.Retryable(f"SQS kept failing {len(entries)} jobs")


def send_rebuild_jobs(jobs: Sequence[Job]) -> None:
    _send(get_settings().rebuild_queue_url, jobs)


def send_fanout_job(job: FanoutJob | ParkedJob, *, delay_seconds: int = 0) -> None:
    _send(get_settings().fanout_queue_url, [job], delay_seconds)


def send_bulk_job(job: BulkJob, *, export: bool) -> None:
    """The next chunk of a job: exports on the ExportQueue, imports and tagging on the ImportQueue."""
    settings = get_settings()
    _send(settings.export_queue_url if export else settings.import_queue_url, [job])


def send_deliveries(pairs: Iterable[tuple[str, str]], *, delay_seconds: int = 0) -> None:
    """A delivery job per (message_id, user_id), visible after `delay_seconds` (at most 900)."""
    jobs = [DeliveryJob(message_id=m, user_id=u) for m, u in pairs]
    _send(get_settings().delivery_queue_url, jobs, delay_seconds)


def send_webhook_jobs(jobs: Sequence[WebhookJob], *, delay_seconds: int = 0) -> None:
    """Webhook attempts, visible after `delay_seconds` (at most 900)."""
    _send(get_settings().webhook_queue_url, jobs, delay_seconds)


def delivery_backlog() -> int:
    """About how many delivery jobs wait in the DeliveryQueue (visible, delayed and in flight)."""
    try:
        answer = aws.client("sqs").get_queue_attributes(
            QueueUrl=get_settings().delivery_queue_url,
            AttributeNames=[
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesDelayed",
                "ApproximateNumberOfMessagesNotVisible",
            ],
        )
    except ClientError as error:
        raise errors.Retryable(f"SQS: {dynamo.error_code(error)}") from error
    return sum(int(value) for value in (answer.get("Attributes") or {}).values())


def receive_dead_deliveries(limit: int) -> list[tuple[str, DeliveryJob | None]]:
    """Up to `limit` jobs from DeliveryQueue's dead-letter queue, as (receipt handle, job); a body
    that is not a delivery job comes as None (delete it). Received ones stay hidden a while."""
    sqs = aws.client("sqs")
    found: list[tuple[str, DeliveryJob | None]] = []
    while len(found) < limit:
        try:
            answer = sqs.receive_message(
                QueueUrl=get_settings().delivery_dead_letter_queue_url,
                MaxNumberOfMessages=min(10, limit - len(found)),
                VisibilityTimeout=300,
                WaitTimeSeconds=0,
            )
        except ClientError as error:
            raise errors.Retryable(f"SQS: {dynamo.error_code(error)}") from error
        batch = answer.get("Messages") or []
        if not batch:
            break
        for message in batch:
            try:
                job: DeliveryJob | None = delivery_job_from_body(message["Body"])
            except ValueError:
                job = None
            found.append((message["ReceiptHandle"], job))
    return found


def delete_dead_delivery(receipt_handle: str) -> None:
    aws.client("sqs").delete_message(
        QueueUrl=get_settings().delivery_dead_letter_queue_url, ReceiptHandle=receipt_handle
    )


def delay_delivery(receipt_handle: str, seconds: int) -> None:
    """Make a delivery job received now visible again after `seconds` (a retry's backoff)."""
    # If this fails, the queue's own visibility timeout applies: a later retry, nothing lost.
    with contextlib.suppress(ClientError):
        aws.client("sqs").change_message_visibility(
            QueueUrl=get_settings().delivery_queue_url,
            ReceiptHandle=receipt_handle,
            VisibilityTimeout=seconds,
        )
