"""Segment messages read into changes (pure): event names, Segment's time, trait mapping."""

from __future__ import annotations

from decimal import Decimal

import pytest
from segmentation.errors import Malformed, PayloadTooLarge
from segmentation.people.segment_messages import read_body
from segmentation.values import parse_timestamp

NOW = float(parse_timestamp("2026-11-28T10:00:00Z"))


def one(message: dict, route: str | None = None):
    read = read_body({"batch": [message]} if route is None else message, route, NOW)
    return read.messages[0] if read.messages else read.rejected[0]


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        ("Order Completed", "order_completed"),
        ("Signed Up (web)", "signed_up_web_"),
        ("checkout.v2-step", "checkout.v2-step"),
        ("a  /  b", "a_b"),
    ],
)
def test_event_names_replace_each_run_of_other_characters_with_one_underscore(sent: str, stored: str) -> None:
    message = one({"type": "track", "userId": "u", "event": sent})
    assert message.event.name == stored


@pytest.mark.parametrize("sent", ["1st purchase", "_private", "x" * 65, ""])
def test_names_that_still_break_the_rule_are_rejected(sent: str) -> None:
    assert one({"type": "track", "userId": "u", "event": sent}).code in {
        "invalid_event_name",
        "invalid_message",
    }


def test_time_is_timestamp_else_original_timestamp_corrected_else_arrival() -> None:
    assert one(
        {"type": "track", "userId": "u", "event": "e", "timestamp": "2026-11-28T09:00:00Z"}
    ).event.at == (parse_timestamp("2026-11-28T09:00:00Z"))
    # The client's clock runs 2 hours late: sent at 08:00:05 by its clock, received at 10:00:00.
    skewed = {
        "type": "track",
        "userId": "u",
        "event": "e",
        "originalTimestamp": "2026-11-28T08:00:00Z",
        "sentAt": "2026-11-28T08:00:05Z",
    }
    assert one(skewed).event.at == parse_timestamp("2026-11-28T09:59:55Z")
    batch_level = read_body(
        {"batch": [{**skewed, "sentAt": None}], "sentAt": "2026-11-28T08:00:05Z"}, None, NOW
    )
    assert batch_level.messages[0].event.at == parse_timestamp("2026-11-28T09:59:55Z")
    assert one({"type": "track", "userId": "u", "event": "e"}).event.at == Decimal("1795860000.000")
    assert (
        one({"type": "track", "userId": "u", "event": "e", "timestamp": "soon"}).code == "invalid_timestamp"
    )


def test_identify_traits_map_to_fields_and_custom_attributes() -> None:
    message = one(
        {
            "userId": 42,
            "traits": {"firstName": "Ada", "createdAt": 1700000000, "vip": True, "nested": {"a": 1}},
            "context": {"traits": {"email": "ada@example.com", "firstName": "Someone"}},
        },
        route="identify",
    )
    assert message.user_id == "42"
    assert message.user.fields == {
        "email": "ada@example.com",
        "name": "Ada",
        "signed_up_at": Decimal(1700000000),
    }
    assert message.user.custom == {"vip": True}


def test_page_and_screen_keep_the_name_and_up_to_ten_scalar_properties() -> None:
    properties = {f"p{i}": i for i in range(12)} | {"list": [1]}
    message = one({"userId": "u", "name": "Pricing", "properties": properties}, route="page")
    assert message.event.name == "page_viewed"
    assert list(message.event.metadata) == ["name"] + [f"p{i}" for i in range(9)]


def test_a_batch_that_is_not_a_list_or_too_long_fails_whole() -> None:
    with pytest.raises(Malformed):
        read_body({"batch": "x"}, None, NOW)
    with pytest.raises(PayloadTooLarge):
        read_body({"batch": [{}] * 2501}, None, NOW)
