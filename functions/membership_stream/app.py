"""MembershipStreamFunction: the Users and Companies streams → membership differences.

Records are handled one by one in stream order (so one user's records apply in order), within
one refresh run per batch, settled at its end (segmentation.upkeep.stream parks a record that
keeps failing); only a record that even parking fails is reported (ReportBatchItemFailures).
"""

from __future__ import annotations

from typing import Any, cast

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from segmentation import clock, health
from segmentation.handler_wiring import entry_point, logger, metrics
from segmentation.upkeep import stream
from segmentation.upkeep.refresh import RefreshRun

processor = BatchProcessor(event_type=EventType.DynamoDBStreams)


def _handle(upkeep: RefreshRun, record: DynamoDBRecord) -> None:
    assert record.dynamodb is not None and record.event_name is not None
    event = cast(stream.EventName, record.event_name.name)  # INSERT, MODIFY or REMOVE
    table = stream.table_of_stream(record.event_source_arn or "")
    old, new = record.dynamodb.old_image or None, record.dynamodb.new_image or None
    outcome = stream.on_record(upkeep, table, event, old, new, clock.now())
    logger.debug("stream record", extra={"table": table, "event": event, "outcome": outcome})


@entry_point()
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
