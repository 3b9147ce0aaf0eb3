"""The two SQS queues of messaging: DeliveryQueue (one job per (message, user)) and FanoutQueue
(one job per page of a message's audience)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from botocore.exceptions import ClientError

from segmentation import errors
from segmentation.settings import get_settings
from segmentation.storage import aws

_BATCH = 10  # SendMessageBatch takes at most 10 entries


def _sqs() -> Any:
    return aws.client("sqs")


def enqueue_deliveries(jobs: Iterable[tuple[str, str]]) -> None:
    """Queue a delivery job {"message_id", "user_id"} per (message_id, user_id)."""
    pending = [{"message_id": m, "user_id": u} for m, u in jobs]
    url = get_settings().delivery_queue_url
    for start in range(0, len(pending), _BATCH):
        chunk = pending[start : start + _BATCH]
        entries = [{"Id": str(i), "MessageBody": json.dumps(job)} for i, job in enumerate(chunk)]
        try:
            response = _sqs().send_message_batch(QueueUrl=url, Entries=entries)
        except ClientError as exc:
            raise errors.Retryable(f"SQS refused a delivery batch: {exc}") from exc
        if response.get("Failed"):
            # A duplicate job is harmless (the sender's conditional move stops it); a lost one is
            # not, so the caller retries the whole page.
            raise errors.Retryable(f"SQS failed {len(response['Failed'])} delivery jobs")


def enqueue_fanout(job: dict[str, Any]) -> None:
    try:
        _sqs().send_message(QueueUrl=get_settings().fanout_queue_url, MessageBody=json.dumps(job))
    except ClientError as exc:
        raise errors.Retryable(f"SQS refused a fan-out job: {exc}") from exc
