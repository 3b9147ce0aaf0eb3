"""RebuildWorkerFunction (RebuildQueue, BatchSize 1): run one rebuild job, re-queue it if time runs low."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from segmentation import clock, health
from segmentation.handler_wiring import entry_point, logger, metrics
from segmentation.jobs import rebuild_job_from_body
from segmentation.upkeep import rebuild

# BatchSize 1: a failed job is reported like any partial failure (SQS retries it, then the DLQ keeps it).
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


def _seconds_left(context: Any) -> float:
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    return remaining() / 1000 if callable(remaining) else float("inf")


def _run(record: SQSRecord, context: Any) -> None:
    job = rebuild_job_from_body(record.body)
    rest = rebuild.run_and_requeue(job, clock.now(), lambda: _seconds_left(context))
    if rest is not None:
        logger.info("rebuild job re-queued with its cursor", extra={"kind": rest.kind})


@entry_point()
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    response = process_partial_response(
        event=event, record_handler=lambda record: _run(record, context), processor=processor, context=context
    )
    if skipped := health.take_skipped():  # alarmed on; nothing is published while all is well
        metrics.add_metric(name="EvaluationsSkipped", unit=MetricUnit.Count, value=skipped)
    return response
