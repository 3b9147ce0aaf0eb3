"""WebhookRetryFunction (every minute): queue an attempt of every webhook delivery now due."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext
from segmentation import clock
from segmentation.changes import deliveries

logger = Logger()
tracer = Tracer(patch_modules=["botocore"])  # the only library that does I/O here


@logger.inject_lambda_context
# Responses and errors can hold personal data: X-Ray records neither (docs/architecture.md).
@tracer.capture_lambda_handler(capture_response=False, capture_error=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, int]:
    queued = deliveries.send_due(clock.now())
    if queued:
        logger.info("due webhook deliveries queued", extra={"queued": queued})
    return {"queued": queued}
