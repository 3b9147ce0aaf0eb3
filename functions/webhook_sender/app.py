"""WebhookSenderFunction (WebhookQueue): one attempt of each webhook delivery whose job arrives
(segmentation.changes.deliveries.attempt). A job whose attempt is not due, or taken already, does
nothing; a failed POST is not an error here: its retry is scheduled in the table."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from segmentation import clock
from segmentation.changes import deliveries
from segmentation.handler_wiring import entry_point, logger, metrics
from segmentation.jobs import webhook_job_from_body

processor = BatchProcessor(event_type=EventType.SQS)


def _run(record: SQSRecord) -> None:
    job = webhook_job_from_body(record.body)
    outcome = deliveries.attempt(job, clock.now())
    metrics.add_metric(name=f"Webhook_{outcome}", unit=MetricUnit.Count, value=1)
    logger.info("webhook attempt", extra={"webhook_id": job.webhook_id, "outcome": outcome})


@entry_point()
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(event=event, record_handler=_run, processor=processor, context=context)
