"""MembershipStreamFunction: the Users and Companies streams → membership differences.

Records are handled one by one in stream order (so one user's records apply in order), within
one upkeep pass per batch, settled at its end. A record that keeps failing is parked on the
RebuildQueue (a MembersJob of its own, retried alone from the member's current item) so the
stream goes on; only if even that fails is it reported (ReportBatchItemFailures) for a retry.
"""

from __future__ import annotations

from typing import Any, cast

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from segmentation import clock, health
from segmentation.engine.fields import Target
from segmentation.errors import Retryable
from segmentation.jobs import MembersJob
from segmentation.settings import get_settings
from segmentation.storage import queues
from segmentation.upkeep import stream
from segmentation.upkeep.refresh import RefreshRun

logger = Logger()
tracer = Tracer(patch_modules=["botocore"])  # the only library that does I/O here
metrics = Metrics(namespace="Segmentation")
processor = BatchProcessor(event_type=EventType.DynamoDBStreams)


def _table_name(arn: str) -> str:
    # arn:aws:dynamodb:<region>:<account>:table/<name>/stream/<label>
    return arn.split(":table/", 1)[-1].split("/", 1)[0]


def _handle(upkeep: RefreshRun, record: DynamoDBRecord) -> None:
    assert record.dynamodb is not None and record.event_name is not None
    event = cast(stream.EventName, record.event_name.name)  # INSERT, MODIFY or REMOVE
    old = record.dynamodb.old_image or None
    new = record.dynamodb.new_image or None
    table = _table_name(record.event_source_arn or "")
    settings = get_settings()
    target: Target = "users" if table == settings.users_table else "companies"
    if table not in (settings.users_table, settings.companies_table):
        raise ValueError(f"record from an unexpected table {table!r}")
    try:
        if target == "users":
            outcome = stream.on_user_change(upkeep, event, old, new, clock.now())
        else:
            outcome = stream.on_company_change(upkeep, event, old, new, clock.now())
    except Retryable:
        raise  # throttling and the like: the stream retries the record
    except Exception as error:
        image = new or old or {}
        member_id = str(image.get("user_id" if target == "users" else "company_id") or "")
        if not member_id:
            raise  # nothing to reconcile later: the stream's retries and failure queue take it
        where = {"target": target, "id": member_id, **health.error_fields(error)}
        logger.error("stream record failed; parking its member", extra=where)
        queues.send_rebuild_jobs([MembersJob(target=target, member_ids=[member_id])])
        outcome = "parked"
    logger.debug("stream record", extra={"table": table, "event": event, "outcome": outcome})


@logger.inject_lambda_context
# Responses and errors can hold keys or personal data: X-Ray records neither (docs/architecture.md).
@tracer.capture_lambda_handler(capture_response=False, capture_error=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    upkeep = RefreshRun()  # one workspace for the batch: every record sees the same segments
    response = process_partial_response(
        event=event,
        record_handler=lambda record: _handle(upkeep, record),
        processor=processor,
        context=context,
    )
    upkeep.finish()
    if skipped := health.take_skipped():  # alarmed on; nothing is published while all is well
        metrics.add_metric(name="EvaluationsSkipped", unit=MetricUnit.Count, value=skipped)
    return response
