"""ChangesPublisherFunction: recorded changes go onto the stack's EventBridge bus, 10 a PutEvents,
refused entries sent again, and the stream told where to resume when EventBridge keeps refusing."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest
from segmentation.settings import get_settings
from segmentation.storage import attributes, aws, bus

from tests.integration.upkeep_support import FakeContext, Stack, load_handler
from tests.support.apigw import call

PRO = {"field": "custom_attributes.plan", "op": "eq", "value": "pro"}


@pytest.fixture
def stack(aws: Any, keys: dict[str, str]) -> Stack:
    attributes.register("users", {"plan": "string"})
    made = Stack(
        tables=dict(aws.table_names),
        stream_arns={name: arn for arn, name in aws.stream_tables.items()},
        rebuild_queue_url=os.environ["REBUILD_QUEUE_URL"],
    )
    made.skip_stream(made.tables["UsersTable"])
    return made


@pytest.fixture
def on_the_bus() -> str:
    """A queue the bus's events reach (an operator's rule): what EventBridge got, to read back."""
    sqs, events = aws.client("sqs"), aws.client("events")
    url = sqs.create_queue(QueueName="caught")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    bus_name = get_settings().changes_event_bus
    events.put_rule(
        Name="all-changes", EventBusName=bus_name, EventPattern=json.dumps({"source": ["segmentation"]})
    )
    events.put_targets(Rule="all-changes", EventBusName=bus_name, Targets=[{"Id": "q", "Arn": arn}])
    return str(url)


def caught(url: str) -> list[dict[str, Any]]:
    sqs = aws.client("sqs")
    found: list[dict[str, Any]] = []
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        for message in messages:
            found.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return found


def make_changes(stack: Stack, keys: dict[str, str], count: int) -> list[dict[str, Any]]:
    """`count` users entering a new segment; the Changes stream's records."""
    reply = call("POST", "/v1/segments", key=keys["write"], body={"name": "Pro", "filter": PRO})
    assert reply.status == 201
    for n in range(count):
        body = {"user_id": f"u{n:02d}", "custom_attributes": {"plan": "pro"}}
        assert call("POST", "/v1/users", key=keys["ingest"], body=body).status == 201
    membership = load_handler("membership_stream").lambda_handler
    membership({"Records": stack.stream_records(stack.tables["UsersTable"])}, FakeContext())
    records = [r for r in stack.stream_records(stack.tables["ChangesTable"]) if r["eventName"] == "INSERT"]
    return [r for r in records if r["dynamodb"]["NewImage"]["segment_id"]["S"].startswith("seg_")]


class Counting:
    """The events client, counting PutEvents calls; `refuse` fails entries of the first calls."""

    def __init__(self, refuse: list[int] | None = None) -> None:
        self.real = aws.client("events")
        self.calls: list[int] = []
        self.refuse = list(refuse or [])

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        self.calls.append(len(Entries))
        if self.refuse:
            refused = self.refuse.pop(0)
            keep = Entries[:-refused] if refused else Entries
            answer = self.real.put_events(Entries=keep) if keep else {"Entries": []}
            results = answer["Entries"] + [{"ErrorCode": "ThrottlingException"}] * refused
            return {"FailedEntryCount": refused, "Entries": results}
        result: dict[str, Any] = self.real.put_events(Entries=Entries)
        return result


def publish(records: list[dict[str, Any]], events_client: Counting) -> Any:
    """The publisher's answer, with its EventBridge client replaced for the call."""
    real_client = aws.client
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(
            aws, "client", lambda service: events_client if service == "events" else real_client(service)
        )
        return load_handler("changes_publisher").lambda_handler({"Records": records}, FakeContext())


def test_each_change_goes_on_the_bus_with_its_source_and_detail_type_ten_a_call(stack, keys, on_the_bus):
    records = make_changes(stack, keys, 25)
    assert len(records) == 25
    counting = Counting()
    assert publish(records, counting) == {"batchItemFailures": []}
    assert counting.calls == [10, 10, 5]
    events = caught(on_the_bus)
    assert len(events) == 25
    assert {(e["source"], e["detail-type"]) for e in events} == {(bus.SOURCE, bus.DETAIL_TYPE)}
    details = sorted((e["detail"] for e in events), key=lambda d: d["member_id"])
    assert details[0] == {
        "segment_id": details[0]["segment_id"],
        "target": "users",
        "member_id": "u00",
        "change": "entered",
        "at": details[0]["at"],
        "cause": "attributes",
        "sequence": 1,
    }


def test_refused_entries_are_sent_again(stack, keys, on_the_bus):
    records = make_changes(stack, keys, 12)
    counting = Counting(refuse=[3])  # the first call: its last 3 entries are refused
    assert publish(records, counting) == {"batchItemFailures": []}
    assert counting.calls == [10, 3, 2]
    assert sorted(e["detail"]["member_id"] for e in caught(on_the_bus)) == [f"u{n:02d}" for n in range(12)]


def test_entries_refused_again_and_again_make_the_stream_resume_from_the_first_of_them(
    stack, keys, monkeypatch
):
    records = make_changes(stack, keys, 12)
    monkeypatch.setattr(bus, "_ATTEMPTS", 2)
    counting = Counting(refuse=[0, 2, 2])  # the second call loses its last 2 entries, twice
    answer = publish(records, counting)
    assert answer == {"batchItemFailures": [{"itemIdentifier": records[10]["dynamodb"]["SequenceNumber"]}]}
