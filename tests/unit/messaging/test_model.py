"""The create request of a message: shape checks, each problem named by its path."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError
from segmentation.http.errors import validation_details
from segmentation.messaging.model import Audience, Message, MessageCreate
from segmentation.storage.inbox import sort_key

VALID = {
    "name": "Welcome",
    "type": "manual",
    "channel": "email",
    "audience": {"segment_id": "seg_1"},
    "subject": "Hi",
    "body": "Hello",
}


def paths_of(body: Any) -> list[str]:
    with pytest.raises(ValidationError) as caught:
        MessageCreate.model_validate(body)
    return [d["path"] for d in validation_details(caught.value.errors())]


def test_a_valid_request_parses() -> None:
    request = MessageCreate.model_validate(VALID)
    assert (request.type, request.channel, request.audience.segment_id, request.audience.filter) == (
        "manual",
        "email",
        "seg_1",
        None,
    )


@pytest.mark.parametrize(
    ("change", "path"),
    [
        ({"subject": None}, "subject"),
        ({"subject": "  "}, "subject"),
        ({"audience": {}}, "audience"),
        ({"audience": {"segment_id": 5}}, "audience.segment_id"),
        ({"audience": {"filter": []}}, "audience.filter"),
        ({"audience": {"segment_id": "s", "other": 1}}, "audience.other"),
        ({"name": ""}, "name"),
        ({"body": ""}, "body"),
        ({"type": "drip"}, "type"),
        ({"channel": "push"}, "channel"),
        ({"state": "live"}, "state"),
    ],
)
def test_bad_fields_are_named(change: dict[str, Any], path: str) -> None:
    assert path in paths_of({**VALID, **change})


def test_in_app_needs_no_subject_and_the_body_must_be_an_object() -> None:
    assert MessageCreate.model_validate({**VALID, "channel": "in_app", "subject": None}).subject is None
    assert paths_of(["not", "an", "object"]) == ["body"]


def test_item_round_trip_keeps_the_contract_shape() -> None:
    audience = Audience(None, {"field": "email", "op": "exists"})
    message = Message(
        id="msg_1", name="n", type="auto", channel="in_app", audience=audience,
        subject=None, body="b", state="draft", stats={}, created_at=1.5, updated_at=1.5, sent_at=None,
    )  # fmt: skip
    # A message stored before the feedback counters existed shows them as 0.
    item = {**message.to_item(), "stat_queued": 2, "stat_sent": 1, "stat_bounced": 1}
    again = Message.from_item(item).to_json()
    assert again["audience"] == {"filter": {"field": "email", "op": "exists"}}
    assert again["stats"] == {
        "queued": 2, "sent": 1, "skipped": 0, "failed": 0, "delivered": 0, "bounced": 1, "complained": 0,
    }  # fmt: skip
    assert again["created_at"] == "1970-01-01T00:00:01.500Z" and again["sent_at"] is None


def test_inbox_sort_keys_order_as_time_does() -> None:
    assert sort_key(999.5, "msg_b") < sort_key(1000.0, "msg_a") < sort_key(1_800_000_000.0, "msg_a")
