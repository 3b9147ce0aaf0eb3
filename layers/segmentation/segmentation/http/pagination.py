"""Opaque cursors for `{"data": [...], "next_cursor": str|null}` pages, and page-size checks."""

from __future__ import annotations

import base64
import binascii
import json
from decimal import Decimal
from typing import Any

from segmentation.errors import Invalid

DEFAULT_LIMIT = 50
MAX_LIMIT = 100


def encode_cursor(position: dict[str, Any] | None) -> str | None:
    """A DynamoDB LastEvaluatedKey (or any JSON-able position) → an opaque URL-safe string."""
    if not position:
        return None
    text = json.dumps(position, default=_decimal_text, separators=(",", ":"), sort_keys=True)
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> dict[str, Any] | None:
    """The position of a cursor from encode_cursor; a 422 on `cursor` when it is not one."""
    if not cursor:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        position = json.loads(base64.urlsafe_b64decode(padded.encode()), parse_float=Decimal)
    except (binascii.Error, ValueError, UnicodeDecodeError) as error:
        raise Invalid("The cursor is not valid.", [{"path": "cursor", "message": "not a cursor"}]) from error
    if not isinstance(position, dict):
        raise Invalid("The cursor is not valid.", [{"path": "cursor", "message": "not a cursor"}])
    return _integral_numbers(position)


def page(data: list[Any], next_position: dict[str, Any] | None) -> dict[str, Any]:
    return {"data": data, "next_cursor": encode_cursor(next_position)}


def _decimal_text(value: Any) -> Any:
    if isinstance(value, Decimal):
        return {"$n": str(value)}
    raise TypeError(f"not JSON: {type(value).__name__}")


def _integral_numbers(position: dict[str, Any]) -> dict[str, Any]:
    """Numbers came in as {"$n": "..."}: give them back as Decimals, as boto3 wants key values."""
    result: dict[str, Any] = {}
    for key, value in position.items():
        if isinstance(value, dict) and set(value) == {"$n"}:
            result[key] = Decimal(str(value["$n"]))
        else:
            result[key] = value
    return result
