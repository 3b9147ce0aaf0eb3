"""ReconcilerFunction (schedule): settle deliveries stuck in `queued` or `sending` (see
segmentation.messaging.reconciler)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from segmentation import clock
from segmentation.messaging import reconciler

logger = Logger()
tracer = Tracer(patch_modules=["botocore"])  # the only library that does I/O here
metrics = Metrics(namespace="Segmentation")


@logger.inject_lambda_context
# Responses and errors can hold keys or personal data: X-Ray records neither (docs/architecture.md).
@tracer.capture_lambda_handler(capture_response=False, capture_error=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, int]:
    tally = reconciler.reconcile(clock.now())
    for outcome in ("requeued", "failed_stuck", "failed_outcome_unknown"):
        metrics.add_metric(name=f"Deliveries_{outcome}", unit=MetricUnit.Count, value=tally[outcome])
    if tally:
        logger.info("stuck deliveries settled", extra=dict(tally))
    return dict(tally)
