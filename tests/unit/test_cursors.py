"""The one cursor codec (storage.cursors): signed positions, bound to a scope, of a given shape."""

from __future__ import annotations

import base64
import json
from decimal import Decimal
from typing import Any

import pytest
from segmentation import errors
from segmentation.storage import cursors

TRIAL = {"field": "custom_attributes.plan", "op": "eq", "value": "free trial"}
SEARCH = ["users", TRIAL]
OWN_MESSAGE = "The cursor is not valid for this search."


def _unsigned(position: Any) -> str:
    text = json.dumps(position, separators=(",", ":"), sort_keys=True)
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def test_a_position_round_trips_with_its_numbers_exact() -> None:
    position = {"c": Decimal("1712345678.123456"), "m": "msg_1", "n": 3, "h": {"k": "v"}}
    cursor = cursors.encode(position)
    assert cursor is not None and cursors.decode(cursor) == position
    assert isinstance(cursors.decode(cursor)["c"], Decimal)


def test_no_position_is_no_cursor() -> None:
    assert cursors.encode(None) is None
    assert cursors.encode({}) is None


def test_an_unscoped_cursor_is_the_signed_json_of_its_position() -> None:
    # Cursors kept across a deploy (a fan-out job's page, a client's next page) still decode.
    cursor = cursors.encode({"m": "u-1"})
    assert cursor is not None and cursor.split(".")[0] == _unsigned({"m": "u-1"})


def test_a_scoped_cursor_decodes_with_its_own_scope_only() -> None:
    cursor = cursors.encode({"k": "u-42"}, scope=SEARCH)
    assert cursor is not None
    assert cursors.decode(cursor, scope=["users", dict(reversed(TRIAL.items()))]) == {"k": "u-42"}
    for scope in (None, ["companies", TRIAL], ["users", {"field": "email", "op": "exists"}], "users"):
        with pytest.raises(errors.Malformed) as exc:
            cursors.decode(cursor, scope=scope)
        assert exc.value.code == "invalid_cursor" and exc.value.status == 400
    unscoped = cursors.encode({"k": "u-42"})
    assert unscoped is not None and unscoped != cursor
    with pytest.raises(cursors.InvalidCursor):
        cursors.decode(unscoped, scope=SEARCH)


@pytest.mark.parametrize(
    "position",
    [
        {"message_id": "m1", "user_id": "u1", "extra": "x"},
        {"message_id": "m1"},
        {"message_id": "m1", "user_id": 7},
        {"message_id": "m1", "user_id": ""},
        {"message_id": "m1", "user_id": ["u1"]},
    ],
    ids=["extra-field", "missing-field", "not-a-string", "empty-string", "a-list"],
)
def test_a_position_of_another_shape_is_invalid(position: dict[str, Any]) -> None:
    fields = {"message_id": str, "user_id": str}
    good = cursors.encode({"message_id": "m1", "user_id": "u1"})
    assert good is not None and cursors.decode(good, fields=fields) == {"message_id": "m1", "user_id": "u1"}
    cursor = cursors.encode(position)
    assert cursor is not None
    assert cursors.decode(cursor) == position  # the signature holds; the shape does not
    with pytest.raises(cursors.InvalidCursor):
        cursors.decode(cursor, fields=fields)


def test_field_types_are_exact() -> None:
    fields = {"c": Decimal, "m": str}
    good = cursors.encode({"c": Decimal("12.5"), "m": "msg_1"})
    assert good is not None and cursors.decode(good, fields=fields)["c"] == Decimal("12.5")
    for position in ({"c": True, "m": "msg_1"}, {"c": "yesterday", "m": "msg_1"}):
        cursor = cursors.encode(position)
        assert cursor is not None
        with pytest.raises(cursors.InvalidCursor):
            cursors.decode(cursor, fields=fields)
    nested = cursors.encode({"h": {"pair": "p"}})
    assert nested is not None and cursors.decode(nested, fields={"h": dict}) == {"h": {"pair": "p"}}


def test_a_signed_value_that_is_not_an_object_is_invalid() -> None:
    listed = cursors.encode([1, "msg_x"])  # type: ignore[arg-type]
    assert listed is not None
    with pytest.raises(cursors.InvalidCursor):
        cursors.decode(listed)


@pytest.mark.parametrize(
    "cursor",
    [
        "not base64 at all!!",
        _unsigned([1, 2]),
        _unsigned({"k": "u-1"}),
        (cursors.encode({"k": "u-1"}, scope=["companies", TRIAL]) or ""),
        (cursors.encode({"k": "u-1"}, scope=SEARCH) or "")[:-3] + "AAA",
        (cursors.encode({"key": "u-1"}, scope=SEARCH) or ""),
    ],
    # A signed cursor differs from process to process: ids of their own keep the test's name stable
    # (pytest-xdist's workers must collect the same names).
    ids=["not-base64", "not-an-object", "unsigned", "other-scope", "bad-signature", "other-shape"],
)
def test_every_refusal_carries_the_callers_message(cursor: str) -> None:
    with pytest.raises(errors.Malformed) as exc:
        cursors.decode(cursor, scope=SEARCH, fields={"k": str}, message=OWN_MESSAGE)
    assert exc.value.code == "invalid_cursor" and exc.value.status == 400
    assert exc.value.message == OWN_MESSAGE
    with pytest.raises(errors.Malformed) as plain:
        cursors.decode(cursor, scope=SEARCH, fields={"k": str})
    assert plain.value.message == cursors.InvalidCursor().message
