"""RecheckFunction (every minute): re-evaluate users whose time-relative membership is due to flip."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from segmentation import clock, health
from segmentation.handler_wiring import entry_point, logger, metrics
from segmentation.upkeep.recheck import recheck_due
from segmentation.upkeep.refresh import current_workspace


@entry_point()
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    rechecked = recheck_due(current_workspace(), clock.now())
    logger.info("recheck done", extra={"rechecked": rechecked})
    if skipped := health.take_skipped():  # alarmed on; nothing is published while all is well
        metrics.add_metric(name="EvaluationsSkipped", unit=MetricUnit.Count, value=skipped)
    return {"rechecked": rechecked}
