"""ChangesPublisherFunction: the Changes table's stream → the stack's EventBridge bus and the webhooks.

New change items only (TTL's deletions are not changes). The batch is published in stream order;
if EventBridge keeps refusing a change, that change's record is reported (ReportBatchItemFailures)
and the stream tries again from it, so what went out before it is not sent twice.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import DynamoDBStreamEvent
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecordEventName
from aws_lambda_powertools.utilities.typing import LambdaContext
from segmentation import clock
from segmentation.changes.publish import publish
from segmentation.handler_wiring import entry_point, logger, metrics

INSERT = DynamoDBRecordEventName.INSERT


@entry_point()
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    inserted = [
        (record.dynamodb.sequence_number, record.dynamodb.new_image)
        for record in DynamoDBStreamEvent(event).records
        if record.event_name == INSERT and record.dynamodb and record.dynamodb.new_image
    ]
    done = publish([image for _, image in inserted], clock.now())
    metrics.add_metric(name="ChangesPublished", unit=MetricUnit.Count, value=done)
    if done < len(inserted):
        left = len(inserted) - done
        logger.warning("EventBridge kept refusing changes; the stream retries", extra={"left": left})
        return {"batchItemFailures": [{"itemIdentifier": inserted[done][0]}]}
    return {"batchItemFailures": []}
