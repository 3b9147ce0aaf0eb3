"""Opaque cursors for `{"data": [...], "next_cursor": str|null}` pages, and page-size checks."""

from __future__ import annotations

from typing import Any

from segmentation.storage import cursors

DEFAULT_LIMIT = 50
MAX_LIMIT = 100


def encode_cursor(position: dict[str, Any] | None) -> str | None:
    """A DynamoDB LastEvaluatedKey (or any JSON-able position) → an opaque cursor; None at the end."""
    return cursors.encode(position) if position else None


def decode_cursor(cursor: str | None) -> dict[str, Any] | None:
    """The position of a cursor from encode_cursor; a 400 `invalid_cursor` when it is not one."""
    if not cursor:
        return None
    position = cursors.decode(cursor)
    if not isinstance(position, dict):
        raise cursors.InvalidCursor()
    return position


def page(data: list[Any], next_position: dict[str, Any] | None) -> dict[str, Any]:
    return {"data": data, "next_cursor": encode_cursor(next_position)}
