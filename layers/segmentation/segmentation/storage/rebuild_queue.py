"""The RebuildQueue: jobs for the rebuild workers (JSON bodies; see segmentation.upkeep.jobs)."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from typing import Any

from segmentation import errors
from segmentation.settings import get_settings
from segmentation.storage import aws


def send_jobs(jobs: Sequence[Mapping[str, Any]]) -> None:
    """Queue jobs with SendMessageBatch (10 a call), resending entries the batch reports failed."""
    url = get_settings().rebuild_queue_url
    if not url:
        raise errors.Retryable("REBUILD_QUEUE_URL is not set")
    sqs = aws.client("sqs")
    for start in range(0, len(jobs), 10):
        entries = [
            {"Id": str(i), "MessageBody": json.dumps(job, sort_keys=True, default=str)}
            for i, job in enumerate(jobs[start : start + 10])
        ]
        for attempt in range(6):
            answer = sqs.send_message_batch(QueueUrl=url, Entries=entries)
            failed = {f["Id"] for f in answer.get("Failed", [])}
            entries = [e for e in entries if e["Id"] in failed]
            if not entries:
                break
            time.sleep(min(0.05 * 2**attempt, 1.0))
        else:
            raise errors.Retryable("SendMessageBatch kept failing")
