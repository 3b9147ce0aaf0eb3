"""Event source mappings, locally: hand real stream and queue records to the functions.

Each source has `poll_once() -> int` (records handed over); a background thread calls them every
POLL_INTERVAL seconds while they find work, less often while idle (`next_poll_wait`), and within
POLL_INTERVAL of a request or a schedule; `/_local/invoke` and `/_local/clock` call them until
all are idle.
Retries follow Lambda's rules closely enough for local work; see docs/local-stack.md.
"""

from __future__ import annotations

import base64
import json
import logging
import uuid
from datetime import UTC, datetime
from typing import Any

from segmentation import clock
from segmentation.storage import aws

from infra.local.intrinsics import REGION
from infra.local.lambdas import LocalFunction, invoke_lock
from infra.local.template import QueueSource, ScheduleSource, StreamSource

log = logging.getLogger("infra.local.pollers")

POLL_INTERVAL = 0.2
# An idle stack waits twice as long after each empty pass, up to this. A request or a schedule
# cuts the wait short, so only what none caused (a delayed or retried SQS message) waits longer.
IDLE_POLL_INTERVAL = 1.6


def next_poll_wait(previous: float) -> float:
    """How long the poll loop waits after an empty pass (a pass that finds work starts over)."""
    return min(previous * 2, IDLE_POLL_INTERVAL)


# Failed SQS messages are made visible again after this long, not after the queue's full
# visibility timeout (minutes), so local retries and the redrive to a DLQ happen quickly.
LOCAL_SQS_RETRY_DELAY = 1
# A stream source whose MaximumRetryAttempts is -1 (forever) would block its shard for good.
LOCAL_STREAM_MAX_RETRIES = 10


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat().replace("+00:00", "Z")


def _lambda_attribute_value(value: Any) -> Any:
    """boto3 gives B/BS as bytes and dates as datetime; Lambda's JSON event has base64 and numbers."""
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode()
    if isinstance(value, datetime):
        return int(value.timestamp())
    if isinstance(value, dict):
        return {k: _lambda_attribute_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_lambda_attribute_value(v) for v in value]
    return value


class StreamPoller:
    """One DynamoDB stream event of one function (Lambda's checkpoint and retry semantics)."""

    def __init__(
        self, source: StreamSource, function: LocalFunction, stream_arn: str, failure_queue_url: str | None
    ):
        self.source = source
        self.function = function
        self.stream_arn = stream_arn
        self.failure_queue_url = failure_queue_url
        self.next_sequence: str | None = None  # first record not yet done; None = trim horizon
        self.attempts = 0
        self.batch_limit = source.batch_size
        self.shard_id: str | None = None

    @property
    def name(self) -> str:
        return f"{self.source.function_id}.{self.source.event_name}"

    def _read(self) -> list[dict[str, Any]]:
        streams = aws.client("dynamodbstreams")
        if self.shard_id is None:
            shards = streams.describe_stream(StreamArn=self.stream_arn)["StreamDescription"]["Shards"]
            if not shards:
                return []
            self.shard_id = shards[0]["ShardId"]
        position: dict[str, Any] = {"ShardIteratorType": "TRIM_HORIZON"}
        if self.next_sequence is not None:
            position = {"ShardIteratorType": "AT_SEQUENCE_NUMBER", "SequenceNumber": self.next_sequence}
        iterator = streams.get_shard_iterator(StreamArn=self.stream_arn, ShardId=self.shard_id, **position)
        records = streams.get_records(ShardIterator=iterator["ShardIterator"], Limit=self.batch_limit)[
            "Records"
        ]
        _forget_iterators()
        return [
            {**_lambda_attribute_value(record), "eventVersion": "1.1", "eventSourceARN": self.stream_arn}
            for record in records
        ]

    def poll_once(self) -> int:
        with invoke_lock:
            records = self._read()
            if not records:
                return 0
            failed_at = self._invoke(records)
            if failed_at is None:
                self._advance_past(records[-1])
                self.attempts, self.batch_limit = 0, self.source.batch_size
            elif failed_at > 0:
                # Partial success: the next batch starts at the failed record, a fresh attempt.
                self.next_sequence = records[failed_at]["dynamodb"]["SequenceNumber"]
                self.attempts = 0
            else:
                self._retry_or_give_up(records)
            return len(records)

    def _invoke(self, records: list[dict[str, Any]]) -> int | None:
        """None on success, else the index of the first record to retry from."""
        try:
            result = self.function.invoke({"Records": records})
        except Exception:
            log.exception("%s failed on a batch of %d stream records", self.name, len(records))
            return 0
        if not self.source.report_item_failures or not isinstance(result, dict):
            return None
        failures = result.get("batchItemFailures") or []
        if not failures:
            return None
        sequence_numbers = [r["dynamodb"]["SequenceNumber"] for r in records]
        identifiers = [f.get("itemIdentifier") if isinstance(f, dict) else None for f in failures]
        if any(i not in sequence_numbers for i in identifiers):
            return 0  # Lambda treats an unknown identifier as a failure of the whole batch.
        return min(sequence_numbers.index(i) for i in identifiers)

    def _retry_or_give_up(self, records: list[dict[str, Any]]) -> None:
        if self.source.bisect_on_error and len(records) > 1:
            self.batch_limit = max(1, len(records) // 2)
            return  # Splitting a batch does not count against the retries, as in Lambda.
        self.attempts += 1
        limit = self.source.max_retry_attempts
        limit = LOCAL_STREAM_MAX_RETRIES if limit < 0 else limit
        if self.attempts <= limit:
            return
        log.error("%s gives up on %d records after %d attempts", self.name, len(records), self.attempts)
        self._send_to_failure_destination(records)
        self._advance_past(records[-1])
        self.attempts, self.batch_limit = 0, self.source.batch_size

    def _advance_past(self, record: dict[str, Any]) -> None:
        self.next_sequence = str(int(record["dynamodb"]["SequenceNumber"]) + 1)

    def _send_to_failure_destination(self, records: list[dict[str, Any]]) -> None:
        if not self.failure_queue_url:
            return
        first, last = records[0]["dynamodb"], records[-1]["dynamodb"]
        now = clock.now()
        message = {
            "requestContext": {
                "requestId": str(uuid.uuid4()),
                "functionArn": self.function.name,
                "condition": "RetryAttemptsExhausted",
                "approximateInvokeCount": self.attempts,
            },
            "responseContext": {
                "statusCode": 200,
                "executedVersion": "$LATEST",
                "functionError": "Unhandled",
            },
            "version": "1.0",
            "timestamp": _iso(now),
            "DDBStreamBatchInfo": {
                "shardId": self.shard_id,
                "startSequenceNumber": first["SequenceNumber"],
                "endSequenceNumber": last["SequenceNumber"],
                "approximateArrivalOfFirstRecord": _iso(first["ApproximateCreationDateTime"]),
                "approximateArrivalOfLastRecord": _iso(last["ApproximateCreationDateTime"]),
                "batchSize": len(records),
                "streamArn": self.stream_arn,
            },
        }
        aws.client("sqs").send_message(QueueUrl=self.failure_queue_url, MessageBody=json.dumps(message))


def _forget_iterators() -> None:
    """moto keeps every shard iterator it ever issued; we make a fresh one per poll, so drop them."""
    from moto.dynamodbstreams.models import dynamodbstreams_backends

    for account in dynamodbstreams_backends.values():
        for backend in account.values():
            backend.shard_iterators.clear()


class QueuePoller:
    """One SQS event of one function: receive, invoke, delete what succeeded."""

    def __init__(self, source: QueueSource, function: LocalFunction, queue_arn: str, queue_url: str):
        self.source = source
        self.function = function
        self.queue_arn = queue_arn
        self.queue_url = queue_url

    @property
    def name(self) -> str:
        return f"{self.source.function_id}.{self.source.event_name}"

    def poll_once(self) -> int:
        with invoke_lock:
            sqs = aws.client("sqs")
            messages = sqs.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=self.source.batch_size,
                MessageSystemAttributeNames=["All"],
                MessageAttributeNames=["All"],
                WaitTimeSeconds=0,
            ).get("Messages", [])
            if not messages:
                return 0
            records = [self._record(m) for m in messages]
            failed = self._invoke(records)
            done = [m for m in messages if m["MessageId"] not in failed]
            for start in range(0, len(done), 10):
                entries = [
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                    for i, m in enumerate(done[start : start + 10])
                ]
                sqs.delete_message_batch(QueueUrl=self.queue_url, Entries=entries)
            for message in messages:
                if message["MessageId"] in failed:
                    sqs.change_message_visibility(
                        QueueUrl=self.queue_url,
                        ReceiptHandle=message["ReceiptHandle"],
                        VisibilityTimeout=LOCAL_SQS_RETRY_DELAY,
                    )
            return len(messages)

    def _invoke(self, records: list[dict[str, Any]]) -> set[str]:
        """The message ids that failed (all of them when the function raised)."""
        ids = {r["messageId"] for r in records}
        try:
            result = self.function.invoke({"Records": records})
        except Exception:
            log.exception("%s failed on a batch of %d messages", self.name, len(records))
            return ids
        if not self.source.report_item_failures or not isinstance(result, dict):
            return set()
        failures = result.get("batchItemFailures") or []
        identifiers = {f.get("itemIdentifier") if isinstance(f, dict) else None for f in failures}
        if not identifiers <= ids:
            return ids  # An unknown identifier fails the whole batch, as in Lambda.
        return {str(i) for i in identifiers}

    def _record(self, message: dict[str, Any]) -> dict[str, Any]:
        attributes = {}
        for name, value in (message.get("MessageAttributes") or {}).items():
            attributes[name] = {
                "stringValue": value.get("StringValue"),
                "binaryValue": _lambda_attribute_value(value["BinaryValue"])
                if "BinaryValue" in value
                else None,
                "stringListValues": value.get("StringListValues", []),
                "binaryListValues": _lambda_attribute_value(value.get("BinaryListValues", [])),
                "dataType": value.get("DataType"),
            }
        return {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "attributes": message.get("Attributes", {}),
            "messageAttributes": attributes,
            "md5OfBody": message.get("MD5OfBody"),
            "eventSource": "aws:sqs",
            "eventSourceARN": self.queue_arn,
            "awsRegion": REGION,
        }


def scheduled_event(
    schedule: ScheduleSource | None, function: LocalFunction, account_id: str
) -> dict[str, Any]:
    """The event EventBridge hands a scheduled function (or the rule's fixed Input)."""
    if schedule is None:
        return {}
    if schedule.input:
        parsed: dict[str, Any] = json.loads(schedule.input)
        return parsed
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": account_id,
        "time": _iso(clock.now()).split(".")[0].rstrip("Z") + "Z",
        "region": REGION,
        "resources": [f"arn:aws:events:{REGION}:{account_id}:rule/{function.name}-{schedule.event_name}"],
        "detail": {},
    }
