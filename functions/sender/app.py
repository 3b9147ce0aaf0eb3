"""SenderFunction (DeliveryQueue): deliver each {message_id, user_id} job at most once, at the
pace SES allows (segmentation.messaging.sender).

Partial batch response: a job that must come back (another worker busy, a fault) is reported as
a failure and retried by SQS; the DLQ takes what keeps failing and the reconciler settles it.
SES throttling does not fail the job: the sender queues a new one and this one is done.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from segmentation import clock
from segmentation.errors import Retryable
from segmentation.handler_wiring import entry_point, logger, metrics
from segmentation.jobs import delivery_job_from_body
from segmentation.messaging import sender

processor = BatchProcessor(event_type=EventType.SQS)


# Stop taking send slots this long before the invocation's timeout (the rest come back later).
_TIME_MARGIN_SECONDS = 10.0


def _deliver(record: SQSRecord, lambda_context: LambdaContext) -> str:
    job = delivery_job_from_body(record.body)
    now = clock.now()
    deadline = now + lambda_context.get_remaining_time_in_millis() / 1000 - _TIME_MARGIN_SECONDS
    try:
        outcome = sender.deliver(job, now, deadline=deadline)
    except Retryable:
        # Another worker holds it, or a fault: come back after a backoff that grows with each
        # receive, instead of the queue's whole visibility timeout.
        sender.back_off(record.receipt_handle, int(record.attributes.approximate_receive_count or 1))
        raise
    logger.info("delivery", extra={"message_id": job.message_id, "user_id": job.user_id, "outcome": outcome})
    kind = outcome.split(":")[0]
    metrics.add_metric(name=f"Delivery_{kind}", unit=MetricUnit.Count, value=1)
    if kind == "held":  # alarmed on: SES refuses to send for the whole account
        metrics.add_metric(name="MessagesHeld", unit=MetricUnit.Count, value=1)
    if outcome == "sent":  # an email SES accepted: the base of the bounce and complaint rates
        metrics.add_metric(name="EmailsSent", unit=MetricUnit.Count, value=1)
    return outcome


@entry_point()
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(
        event=event, record_handler=_deliver, processor=processor, context=context
    )
