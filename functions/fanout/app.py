"""FanoutFunction (FanoutQueue): claim and queue one page of a message's audience, then re-queue
the job with the next cursor (see segmentation.messaging.fanout)."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from segmentation.messaging import fanout

logger = Logger()
tracer = Tracer(patch_modules=["botocore"])  # the only library that does I/O here
processor = BatchProcessor(event_type=EventType.SQS)


def _run(record: SQSRecord) -> None:
    job = json.loads(record.body)
    result = fanout.run_job(job)
    logger.info(
        "fan-out page",
        extra={
            "job": job,
            "queued": len(result.queued),
            "more": result.next_cursor is not None,
            "stopped": result.stopped,
        },
    )


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(event=event, record_handler=_run, processor=processor, context=context)
