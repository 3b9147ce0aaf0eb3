"""FanoutFunction (FanoutQueue): claim and queue one page of a message's audience, then re-queue
the job with the next cursor (see segmentation.messaging.fanout)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from segmentation import health
from segmentation.handler_wiring import entry_point, logger, metrics
from segmentation.jobs import fanout_job_from_body
from segmentation.messaging import fanout

processor = BatchProcessor(event_type=EventType.SQS)


def _run(record: SQSRecord) -> None:
    job = fanout_job_from_body(record.body)
    result = fanout.run(job)
    logger.info(
        "fan-out page",
        extra={
            "message_id": job.message_id,
            "queued": len(result.queued),
            "kind": job.kind,
            "more": result.next_cursor is not None,
            "stopped": result.stopped,
            "waiting": result.waiting,
        },
    )


@entry_point()
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    response = process_partial_response(
        event=event, record_handler=_run, processor=processor, context=context
    )
    if skipped := health.take_skipped():  # alarmed on; nothing is published while all is well
        metrics.add_metric(name="EvaluationsSkipped", unit=MetricUnit.Count, value=skipped)
    return response
