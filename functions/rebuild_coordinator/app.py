"""RebuildCoordinatorFunction (nightly schedule): one RebuildQueue job per parallel-scan slice.

The run id is the schedule's `time`, so a retried or repeated invocation queues the same run;
workers only write differences, so doing a slice twice costs reads, never a wrong count.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext
from segmentation import clock
from segmentation.jobs import scan_jobs
from segmentation.settings import get_settings
from segmentation.storage import queues

logger = Logger()
tracer = Tracer(patch_modules=["botocore"])  # the only library that does I/O here


@logger.inject_lambda_context
# Responses and errors can hold keys or personal data: X-Ray records neither (docs/architecture.md).
@tracer.capture_lambda_handler(capture_response=False, capture_error=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    run_id = str(event.get("time") or clock.now_datetime().isoformat())
    planned = scan_jobs(run_id, get_settings().rebuild_workers)
    queues.send_rebuild_jobs(planned)
    logger.info("nightly rebuild queued", extra={"run_id": run_id, "jobs": len(planned)})
    return {"run_id": run_id, "jobs": len(planned)}
