"""GET /v1/messages pages through the Messages table's sparse index `by_listing`, newest first,
never a scan; deleted messages leave the index; messages made before it existed are backfilled."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from segmentation import clock
from segmentation.auth import access
from segmentation.messaging import auto, sender
from segmentation.settings import get_settings
from segmentation.storage import attributes, cursors, messages
from segmentation.storage import aws as storage_aws

from tests.support.apigw import Reply, call

KEYS = {role: f"sk_{role}_listing_test_key_00000000000000" for role in ("read", "write", "admin")}
TRIAL = {"field": "custom_attributes.plan", "op": "eq", "value": "trial"}


@pytest.fixture
def api(aws: object) -> Iterator[None]:
    for role, key in KEYS.items():
        access.install_key(key, role, role)
    attributes.register("users", {"plan": "string"})
    auto.reset_cache()
    sender.reset_cache()
    yield
    clock.set_offset_seconds(0)


@pytest.fixture
def calls(api: None) -> Iterator[list[tuple[str, str, str]]]:
    """(operation, table, index) of every DynamoDB call made through the shared client."""
    made: list[tuple[str, str, str]] = []

    def record(params: dict[str, Any], model: Any, **_: Any) -> None:
        made.append((model.name, str(params.get("TableName", "")), str(params.get("IndexName", ""))))

    client = storage_aws.dynamodb().meta.client
    client.meta.events.register("before-parameter-build.dynamodb.*", record)
    yield made
    client.meta.events.unregister("before-parameter-build.dynamodb.*", record)


def table() -> Any:
    return boto3.resource("dynamodb").Table(get_settings().messages_table)


def create(name: str, type_: str = "manual") -> str:
    clock.set_offset_seconds(clock.offset_seconds() + 1)  # one second apart: a known order
    body = {"name": name, "type": type_, "channel": "in_app", "audience": {"filter": TRIAL}, "body": "Hi"}
    reply = call("POST", "/v1/messages", key=KEYS["write"], body=body)
    assert reply.status == 201, reply.body
    return str(reply.body["id"])


def page(limit: int, cursor: str | None = None) -> Reply:
    query = {"limit": str(limit), **({"cursor": cursor} if cursor else {})}
    reply = call("GET", "/v1/messages", key=KEYS["read"], query=query)
    assert reply.status == 200, reply.body
    return reply


def listed(limit: int = 2) -> list[str]:
    ids: list[str] = []
    cursor = None
    while True:
        reply = page(limit, cursor)
        ids += [m["id"] for m in reply.body["data"]]
        cursor = reply.body["next_cursor"]
        if cursor is None:
            return ids


def indexed() -> list[str]:
    """The message ids in by_listing, as DynamoDB keeps the index."""
    found = table().query(
        IndexName="by_listing",
        KeyConditionExpression="listing = :l",
        ExpressionAttributeValues={":l": "messages"},
        ScanIndexForward=False,
    )["Items"]
    return [item["message_id"] for item in found]


def test_pages_come_newest_first_through_the_index_never_a_scan(
    api: None, calls: list[tuple[str, str, str]]
) -> None:
    ids = [create(f"m{i}") for i in range(5)]
    page(1)  # the first list of a process checks the backfill flag once
    calls.clear()
    first = page(2)
    assert [m["id"] for m in first.body["data"]] == [ids[4], ids[3]]
    table_name = get_settings().messages_table
    assert [c for c in calls if c[1] in (table_name, "")] == [
        ("Query", table_name, "by_listing"),
        ("BatchGetItem", "", ""),  # it names its tables in RequestItems
    ]
    assert listed(2) == listed(100) == list(reversed(ids))
    assert not [c for c in calls if c[0] == "Scan"]
    last = page(5)
    assert last.body["next_cursor"] is None  # exactly the last message: no empty page after it


def test_a_deleted_message_leaves_the_index_and_the_list(api: None) -> None:
    ids = [create(f"m{i}") for i in range(4)]
    assert call("DELETE", f"/v1/messages/{ids[1]}", key=KEYS["admin"]).status == 204
    assert indexed() == [ids[3], ids[2], ids[0]]
    assert listed(1) == [ids[3], ids[2], ids[0]]
    stored = table().get_item(Key={"message_id": ids[1]})["Item"]
    assert stored["state"] == "deleted" and "listing" not in stored and "listing_order" not in stored


def test_paging_goes_on_past_a_message_deleted_between_pages(api: None) -> None:
    ids = [create(f"m{i}") for i in range(5)]
    first = page(2)
    assert [m["id"] for m in first.body["data"]] == [ids[4], ids[3]]
    assert call("DELETE", f"/v1/messages/{ids[3]}", key=KEYS["admin"]).status == 204
    second = page(2, first.body["next_cursor"])
    assert [m["id"] for m in second.body["data"]] == [ids[2], ids[1]]


def test_a_deleted_message_the_index_still_shows_is_left_out(api: None) -> None:
    """A GSI is updated asynchronously: for a moment it may still hold a deleted message. The
    items are read consistently and a deleted one is dropped."""
    ids = [create(f"m{i}") for i in range(3)]
    assert call("DELETE", f"/v1/messages/{ids[1]}", key=KEYS["admin"]).status == 204
    stale = messages._listing(ids[1], table().get_item(Key={"message_id": ids[1]})["Item"]["created_at"])
    table().update_item(
        Key={"message_id": ids[1]},
        UpdateExpression="SET listing = :l, listing_order = :o",
        ExpressionAttributeValues={":l": stale["listing"], ":o": stale["listing_order"]},
    )
    assert ids[1] in indexed()
    assert listed(1) == listed(10) == [ids[2], ids[0]]


def test_the_live_set_item_stays_out_of_the_index(api: None) -> None:
    message_id = create("Auto", "auto")
    assert call("POST", f"/v1/messages/{message_id}/live", key=KEYS["write"]).status == 200
    assert table().get_item(Key={"message_id": messages.LIVE_META_ID})["Item"]["live_ids"] == {message_id}
    assert indexed() == [message_id]
    assert listed() == [message_id]


def test_messages_made_before_the_index_are_backfilled_once(
    api: None, calls: list[tuple[str, str, str]]
) -> None:
    ids = [create(f"m{i}") for i in range(3)]
    gone = create("deleted before the index")
    assert call("DELETE", f"/v1/messages/{gone}", key=KEYS["admin"]).status == 204
    for message_id in ids:  # as the code before the index wrote them
        table().update_item(Key={"message_id": message_id}, UpdateExpression="REMOVE listing, listing_order")
    messages._backfilled_on = None  # a process starting after the deploy
    assert indexed() == []
    assert listed() == list(reversed(ids))
    assert indexed() == list(reversed(ids))
    assert table().get_item(Key={"message_id": messages.LIVE_META_ID})["Item"]["listing_backfilled"] is True
    messages._backfilled_on = None  # another process: one GetItem of the flag, no scan
    calls.clear()
    assert listed(10) == list(reversed(ids))
    assert not [c for c in calls if c[0] in ("Scan", "UpdateItem")]
    assert [c[0] for c in calls if c[1] == get_settings().messages_table] == ["GetItem", "Query"]


@pytest.mark.parametrize(
    "position",
    [
        {"m": "msg_x"},
        {"c": "yesterday", "m": "msg_x"},
        {"c": True, "m": "msg_x"},
        {"c": 1, "m": 2},
        [1, "msg_x"],
    ],
)
def test_a_cursor_of_another_shape_is_a_400(api: None, position: Any) -> None:
    reply = call("GET", "/v1/messages", key=KEYS["read"], query={"cursor": cursors.encode(position)})
    assert reply.status == 400 and reply.error_code == "invalid_cursor"
