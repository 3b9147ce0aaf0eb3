"""ImportFunction (ImportQueue, BatchSize 1): CSV imports (an upload's S3 event starts one) and
tagging by a filter, a chunk at a time; the job goes on from where it stopped with its next
message (see segmentation.segments.bulk)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from segmentation.handler_wiring import entry_point, logger
from segmentation.segments import bulk

# BatchSize 1: a failed job is reported like any partial failure (SQS retries it, then the DLQ keeps it).
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


def _seconds_left(context: Any) -> float:
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    return remaining() / 1000 if callable(remaining) else float("inf")


def _run(record: SQSRecord, context: Any) -> None:
    receives = int(record.attributes.approximate_receive_count or 1)
    outcomes = bulk.run_message(record.body, lambda: _seconds_left(context), receives)
    logger.info("job message", extra={"outcomes": outcomes})


@entry_point()
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(
        event=event, record_handler=lambda record: _run(record, context), processor=processor, context=context
    )
