"""Helpers for the upkeep integration tests: moto with the template's tables, real stream reads.

Tables and queues come from template.yaml itself (infra.local.resources.provision), so indexes,
key types and streams are the deployed ones.
"""

from __future__ import annotations

import importlib.util
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from types import ModuleType
from typing import Any

from moto import mock_aws
from segmentation import clock
from segmentation.storage import aws

from infra.local.pollers import _lambda_attribute_value
from infra.local.resources import provision
from infra.local.template import load_template
from tests.support.moto_config import MOTO_CONFIG

REPO = Path(__file__).resolve().parents[2]
_ENV = {
    "USERS_TABLE": "UsersTable",
    "COMPANIES_TABLE": "CompaniesTable",
    "SEGMENTS_TABLE": "SegmentsTable",
    "MEMBERSHIPS_TABLE": "MembershipsTable",
    "ATTRIBUTES_TABLE": "DataAttributesTable",
    "API_KEYS_TABLE": "ApiKeysTable",
    "MESSAGES_TABLE": "MessagesTable",
    "DELIVERIES_TABLE": "DeliveriesTable",
    "INBOX_TABLE": "InboxTable",
    "CHANGES_TABLE": "ChangesTable",
    "REBUILD_QUEUE_URL": "RebuildQueue",
    "DELIVERY_QUEUE_URL": "DeliveryQueue",
    "FANOUT_QUEUE_URL": "FanoutQueue",
}


@dataclass
class Stack:
    tables: dict[str, str]
    stream_arns: dict[str, str]  # table name -> stream ARN
    rebuild_queue_url: str
    _positions: dict[str, str | None] = field(default_factory=dict)

    def stream_records(self, table: str) -> list[dict[str, Any]]:
        """The table's stream records not read yet, shaped as Lambda delivers them."""
        streams = aws.client("dynamodbstreams")
        arn = self.stream_arns[table]
        shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
        last = self._positions.get(table)
        position: dict[str, Any] = {"ShardIteratorType": "TRIM_HORIZON"}
        if last is not None:
            position = {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "SequenceNumber": last}
        iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, **position)["ShardIterator"]
        records = streams.get_records(ShardIterator=iterator, Limit=1000)["Records"]
        if records:
            self._positions[table] = records[-1]["dynamodb"]["SequenceNumber"]
        return [{**_lambda_attribute_value(r), "eventVersion": "1.1", "eventSourceARN": arn} for r in records]

    def skip_stream(self, table: str) -> None:
        self.stream_records(table)

    def rebuild_jobs(self) -> list[dict[str, Any]]:
        """Receive (and delete) every job on the RebuildQueue, as SQS event records."""
        sqs = aws.client("sqs")
        found: list[dict[str, Any]] = []
        while True:
            answer = sqs.receive_message(QueueUrl=self.rebuild_queue_url, MaxNumberOfMessages=10)
            messages = answer.get("Messages", [])
            if not messages:
                return found
            for m in messages:
                found.append(
                    {
                        "messageId": m["MessageId"],
                        "receiptHandle": m["ReceiptHandle"],
                        "body": m["Body"],
                        "attributes": {},
                        "messageAttributes": {},
                        "eventSource": "aws:sqs",
                        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:RebuildQueue",
                        "awsRegion": "us-east-1",
                        "md5OfBody": "",
                    }
                )
                sqs.delete_message(QueueUrl=self.rebuild_queue_url, ReceiptHandle=m["ReceiptHandle"])


def _fake_credentials() -> None:
    os.environ.update(
        AWS_ACCOUNT_ID_ENDPOINT_MODE="disabled",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_SESSION_TOKEN="testing",
        POWERTOOLS_TRACE_DISABLED="1",
        POWERTOOLS_DEV="0",
        POWERTOOLS_METRICS_NAMESPACE="SegmentationTests",
    )


def _reset_caches() -> None:
    aws.reset()
    for module, function in (
        ("segmentation.definitions", "reset_cache"),
        ("segmentation.messaging.auto", "reset_cache"),
    ):
        if importlib.util.find_spec(module) is not None:
            getattr(importlib.import_module(module), function)()


@contextmanager
def upkeep_stack() -> Iterator[Stack]:
    _fake_credentials()
    saved = {name: os.environ.get(name) for name in (*_ENV, "INLINE_BUILD_LIMIT", "REBUILD_WORKERS")}
    with mock_aws(config=MOTO_CONFIG):
        aws.reset()
        made = provision(load_template(REPO / "template.yaml"))
        for variable, logical_id in _ENV.items():
            os.environ[variable] = str(made.resolver.resolve({"Ref": logical_id}))
        _reset_caches()
        try:
            yield Stack(
                tables=dict(made.table_names),
                stream_arns={name: arn for arn, name in made.stream_tables.items()},
                rebuild_queue_url=os.environ["REBUILD_QUEUE_URL"],
            )
        finally:
            clock.set_offset_seconds(0)
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
            _reset_caches()


def load_handler(folder: str) -> ModuleType:
    """functions/<folder>/app.py as a module of its own (every handler file is named app.py)."""
    path = REPO / "functions" / folder / "app.py"
    spec = importlib.util.spec_from_file_location(f"handler_{folder}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class FakeContext:
    function_name = "test"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:test"
    aws_request_id = "req-1"

    def __init__(self, seconds_left: float = 600.0):
        self.seconds_left = seconds_left

    def get_remaining_time_in_millis(self) -> int:
        return int(self.seconds_left * 1000)


def epoch(value: float) -> Decimal:
    return Decimal(str(round(value, 3)))


def body(job: dict[str, Any]) -> str:
    return json.dumps(job)


DAY = 86400.0


def make_segment(segment_id: str, filter_: dict[str, Any], target: str = "users") -> Any:
    from segmentation import definitions
    from segmentation.storage import segments

    with definitions.changing():
        return segments.create(
            segment_id=segment_id,
            name=segment_id,
            target=target,
            filter_=filter_,
            now=clock.now(),
            expected_version=definitions.version(check_now=True),
        )


def upsert_user(user_id: str, fields: dict[str, Any] | None = None, **custom: Any) -> dict[str, Any]:
    from segmentation.storage import users

    # An unchanging custom attribute: storage.people_items.upsert fails an update that sends none (reported).
    item, _ = users.upsert(user_id, fields or {}, {"fixture": "1", **custom}, [], clock.now())
    return item


def members(segment_id: str) -> list[str]:
    from segmentation.storage import memberships

    found, cursor = memberships.members_page(segment_id, 1000)
    assert cursor is None
    return found


def stored_segments(target: str, member_id: str) -> set[str]:
    from segmentation.storage import people_scans

    item = people_scans.get_item(target, member_id)  # type: ignore[arg-type]
    assert item is not None
    return set(item.get("segments", set()))
