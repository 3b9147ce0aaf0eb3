"""ReconcilerFunction (schedule): settle deliveries stuck in `queued` or `sending` (see
segmentation.messaging.reconciler)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from segmentation import clock
from segmentation.handler_wiring import entry_point, logger, metrics
from segmentation.messaging import reconciler


@entry_point()
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, int]:
    tally = reconciler.reconcile(clock.now())
    for outcome in ("requeued", "failed_stuck", "failed_outcome_unknown"):
        metrics.add_metric(name=f"Deliveries_{outcome}", unit=MetricUnit.Count, value=tally[outcome])
    if tally:
        logger.info("stuck deliveries settled", extra=dict(tally))
    return dict(tally)
