"""The SQS work queues: RebuildQueue, FanoutQueue and DeliveryQueue (bodies: segmentation.jobs).

A job that cannot be queued raises errors.Retryable, so the caller's own work is retried: a
duplicate job is harmless (every consumer is idempotent), a lost one is not.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Sequence

from botocore.exceptions import ClientError

from segmentation import errors
from segmentation.jobs import DeliveryJob, FanoutJob, Job
from segmentation.settings import get_settings
from segmentation.storage import aws, dynamo

_BATCH = 10  # SendMessageBatch takes at most 10 entries
_ATTEMPTS = 6


def _send(url: str, jobs: Sequence[Job]) -> None:
    """SendMessageBatch, 10 a call, resending the entries a batch reports failed."""
    if not url:
        raise errors.Retryable("the queue's URL is not set")
    sqs = aws.client("sqs")
    for start in range(0, len(jobs), _BATCH):
        entries = [
            {"Id": str(i), "MessageBody": job.to_body()} for i, job in enumerate(jobs[start : start + _BATCH])
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


def send_fanout_job(job: FanoutJob) -> None:
    _send(get_settings().fanout_queue_url, [job])


def send_deliveries(pairs: Iterable[tuple[str, str]]) -> None:
    """A delivery job per (message_id, user_id)."""
    _send(get_settings().delivery_queue_url, [DeliveryJob(message_id=m, user_id=u) for m, u in pairs])


def delay_delivery(receipt_handle: str, seconds: int) -> None:
    """Make a delivery job received now visible again after `seconds` (a retry's backoff)."""
    # If this fails, the queue's own visibility timeout applies: a later retry, nothing lost.
    with contextlib.suppress(ClientError):
        aws.client("sqs").change_message_visibility(
            QueueUrl=get_settings().delivery_queue_url,
            ReceiptHandle=receipt_handle,
            VisibilityTimeout=seconds,
        )
