"""Fixtures and helpers of the messaging tests: the template's tables and queues in moto, users
written as stored items, segments made through the segment service, and queue draining that
feeds SQS messages to the handlers the way Lambda's event source mapping would."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
import pytest
import time_machine
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError
from segmentation import clock
from segmentation.messaging import auto, sender
from segmentation.settings import get_settings
from segmentation.storage import aws

from infra.local import outbox

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Stack:
    env: dict[str, str]

    @property
    def delivery_queue(self) -> str:
        return self.env["DELIVERY_QUEUE_URL"]

    @property
    def fanout_queue(self) -> str:
        return self.env["FANOUT_QUEUE_URL"]

    def table(self, env_name: str) -> Any:
        return boto3.resource("dynamodb").Table(self.env[env_name])


def _reset_caches() -> None:
    aws.reset()
    auto.reset_cache()
    sender.reset_cache()
    from segmentation import definitions
    from segmentation.storage import attributes

    definitions.reset_cache()
    attributes.clear_cache()


@pytest.fixture
def stack(aws: object, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    """tests/conftest.py's `aws` (the template's resources in moto, Settings pointed at them),
    plus a verified SES sender that answers GetAccount as the local stack's does (no rate limit
    unless a test sets one: `outbox.configure`), and messaging's process caches emptied."""
    if not os.environ.get("SENDER_EMAIL"):  # the template's parameter is empty by default
        monkeypatch.setenv("SENDER_EMAIL", "no-reply@example.com")
    outbox.install()
    outbox.configure(rate=0, paused=False)
    _reset_caches()
    env = {name: value for name, value in os.environ.items() if name.endswith(("_TABLE", "_QUEUE_URL"))}
    env["SENDER_EMAIL"] = get_settings().sender_email
    boto3.client("sesv2").create_email_identity(EmailIdentity=env["SENDER_EMAIL"])
    yield Stack(env)
    outbox.configure(rate=0, paused=False)
    _reset_caches()


@pytest.fixture
def sim_time() -> Iterator[time_machine.Traveller]:
    """Time as a simulation moves it: the whole process (the stack's clock, moto's SQS delays and
    visibility) follows `traveller.shift(seconds)`, and the sender's pace moves it instead of
    sleeping."""
    with time_machine.travel(time.time(), tick=True) as traveller:
        clock.set_sleeper(traveller.shift)
        try:
            yield traveller
        finally:
            clock.set_sleeper(None)


def put_user(stack: Stack, user_id: str, **fields: Any) -> dict[str, Any]:
    """A user item as the Users table stores it (numbers as Decimal, `segments` a set)."""
    now = Decimal(str(round(clock.now(), 3)))
    item: dict[str, Any] = {
        "user_id": user_id,
        "session_count": Decimal(0),
        "unsubscribed_from_emails": False,
        "custom_attributes": {},
        "company_ids": [],
        "created_at": now,
        "updated_at": now,
        "rev": Decimal(1),
    }
    item.update(fields)
    stack.table("USERS_TABLE").put_item(Item=item)
    return item


def sent_emails() -> list[Any]:
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.ses.models import ses_backends

    return list(ses_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].sent_messages)


def receive(queue_url: str, *, max_messages: int = 10) -> list[dict[str, Any]]:
    """Take up to `max_messages` messages, hidden from other receivers until `release`d or deleted."""
    found: list[dict[str, Any]] = []
    sqs = boto3.client("sqs")
    while len(found) < max_messages:
        answer = sqs.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=min(10, max_messages - len(found)),
            VisibilityTimeout=600,
            AttributeNames=["All"],
        )
        batch: list[dict[str, Any]] = list(answer.get("Messages", []))  # type: ignore[arg-type]
        if not batch:
            break
        found.extend(batch)
    return found


def release(queue_url: str, messages: list[dict[str, Any]]) -> None:
    """Make messages visible again at once (as SQS does when their visibility timeout ends)."""
    sqs = boto3.client("sqs")
    for m in messages:
        sqs.change_message_visibility(
            QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=0
        )


def sqs_event(messages: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": m.get("Attributes", {}),
                "messageAttributes": {},
                "md5OfBody": m.get("MD5OfBody", ""),
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:Queue",
                "awsRegion": "us-east-1",
            }
            for m in messages
        ]
    }


class FakeContext:
    function_name = "test"
    memory_limit_in_mb = 128
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:test"
    aws_request_id = "req-1"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


def run_queue(queue_url: str, handler: Any, *, rounds: int = 50, batch_size: int = 10) -> int:
    """Feed the queue's messages to `handler` until it is empty (failed items stay, and come
    back on the next round, as SQS would after their visibility timeout). Handled count."""
    sqs = boto3.client("sqs")
    handled = 0
    for _ in range(rounds):
        batch = receive(queue_url, max_messages=batch_size)
        if not batch:
            break
        try:
            answer = handler(sqs_event(batch), FakeContext())
            failed = {f["itemIdentifier"] for f in (answer or {}).get("batchItemFailures", [])}
        except BatchProcessingError:  # every record failed: Lambda fails the whole invocation
            failed = {m["MessageId"] for m in batch}
        for m in batch:
            if m["MessageId"] not in failed:
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"])
                handled += 1
        release(queue_url, [m for m in batch if m["MessageId"] in failed])
        if failed and len(failed) == len(batch):
            break  # nothing moves: let the test decide
    return handled


def jobs_in(queue_url: str) -> list[dict[str, Any]]:
    """The bodies of the messages waiting in a queue (left in place)."""
    waiting = receive(queue_url, max_messages=1000)
    release(queue_url, waiting)
    return [json.loads(m["Body"]) for m in waiting]


def load_handler(folder: str) -> Any:
    """functions/<folder>/app.py's lambda_handler, imported from its file as Lambda would."""
    module_name = f"test_lambda_{folder}"
    if module_name in sys.modules:
        return sys.modules[module_name].lambda_handler
    spec = importlib.util.spec_from_file_location(module_name, ROOT / "functions" / folder / "app.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module.lambda_handler
