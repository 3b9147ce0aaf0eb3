"""WebhookRetryFunction (every minute): queue an attempt of every webhook delivery now due."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from segmentation import clock
from segmentation.changes import deliveries
from segmentation.handler_wiring import entry_point, logger


@entry_point()
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, int]:
    queued = deliveries.send_due(clock.now())
    if queued:
        logger.info("due webhook deliveries queued", extra={"queued": queued})
    return {"queued": queued}
