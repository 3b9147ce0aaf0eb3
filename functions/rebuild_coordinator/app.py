"""RebuildCoordinatorFunction (nightly schedule): one RebuildQueue job per parallel-scan slice,
and the finished days of every segment's changes settled into their stats rows.

The run id is the schedule's `time`, so a retried or repeated invocation queues the same run;
workers only write differences, so doing a slice twice costs reads, never a wrong count. A
settled day leaves the count item in the same transaction that adds it to its row: twice is once.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from segmentation import clock
from segmentation.changes.history import settle_days
from segmentation.handler_wiring import entry_point, logger
from segmentation.settings import get_settings
from segmentation.upkeep import rebuild


@entry_point()
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    run_id = str(event.get("time") or clock.now_datetime().isoformat())
    queued = rebuild.queue_nightly_rebuild(run_id, get_settings().rebuild_workers)
    settled = settle_days(clock.now())
    summary = {"run_id": run_id, "jobs": queued, "days_settled": settled}
    logger.info("nightly rebuild queued", extra=summary)
    return summary
