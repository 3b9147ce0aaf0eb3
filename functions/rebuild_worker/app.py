"""RebuildWorkerFunction (RebuildQueue, BatchSize 1): run one rebuild job, re-queue it if time runs low."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from segmentation import clock
from segmentation.storage import rebuild_queue
from segmentation.upkeep import rebuild
from segmentation.upkeep.refresh import current_workspace

logger = Logger()
tracer = Tracer(patch_modules=["botocore"])  # the only library that does I/O here
processor = BatchProcessor(event_type=EventType.SQS)


def _seconds_left(context: Any) -> float:
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    return remaining() / 1000 if callable(remaining) else float("inf")


def _run(record: SQSRecord, context: Any) -> None:
    job = json.loads(record.body)
    rest = rebuild.run_job(current_workspace(), job, clock.now(), lambda: _seconds_left(context))
    if rest is not None:
        rebuild_queue.send_jobs([rest])
        logger.info("rebuild job re-queued with its cursor", extra={"job": rest})


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(
        event=event, record_handler=lambda record: _run(record, context), processor=processor, context=context
    )
