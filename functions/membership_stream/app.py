"""MembershipStreamFunction: the Users and Companies streams → membership differences.

Records are handled one by one in stream order (so one user's records apply in order); a record
that fails is reported alone (ReportBatchItemFailures) and the others go on.
"""

from __future__ import annotations

from typing import Any, cast

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from segmentation import clock
from segmentation.engine import Workspace
from segmentation.settings import get_settings
from segmentation.upkeep import stream
from segmentation.upkeep.refresh import current_workspace

logger = Logger()
tracer = Tracer(patch_modules=["botocore"])  # the only library that does I/O here
processor = BatchProcessor(event_type=EventType.DynamoDBStreams)


def _table_name(arn: str) -> str:
    # arn:aws:dynamodb:<region>:<account>:table/<name>/stream/<label>
    return arn.split(":table/", 1)[-1].split("/", 1)[0]


def _handle(workspace: Workspace, record: DynamoDBRecord) -> None:
    assert record.dynamodb is not None and record.event_name is not None
    event = cast(stream.EventName, record.event_name.name)  # INSERT, MODIFY or REMOVE
    old = record.dynamodb.old_image or None
    new = record.dynamodb.new_image or None
    table = _table_name(record.event_source_arn or "")
    settings = get_settings()
    if table == settings.users_table:
        outcome = stream.on_user_change(workspace, event, old, new, clock.now())
    elif table == settings.companies_table:
        outcome = stream.on_company_change(workspace, event, old, new, clock.now())
    else:
        raise ValueError(f"record from an unexpected table {table!r}")
    logger.debug("stream record", extra={"table": table, "event": event, "outcome": outcome})


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    workspace = current_workspace()  # once per batch: every record sees the same segments
    return process_partial_response(
        event=event,
        record_handler=lambda record: _handle(workspace, record),
        processor=processor,
        context=context,
    )
