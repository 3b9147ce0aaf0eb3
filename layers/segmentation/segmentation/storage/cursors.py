"""The one codec of opaque page cursors: a position (a JSON object), signed.

A cursor is `<base64url JSON>.<base64url HMAC-SHA256, 16 bytes>`, keyed by a secret of the
stack (storage.secrets.cursor_key, which is why the codec lives in storage). Anything that is not
a cursor this API made, altered or forged, is the same 400 `invalid_cursor`, whatever it decodes
to: the signature is checked before the position is even parsed.

A cursor made with a `scope` (what the page depends on besides its position, such as a search's
target and filter) is good only for that scope: the scope is signed with the position, not
written in it, so a cursor of another scope fails like a forged one. `fields` is the shape the
caller needs (a DynamoDB key, say): a position of any other shape is refused here, before a
table sees it. What a position points at (its member, its message) is the caller's to check.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from segmentation.errors import InvalidCursor
from segmentation.storage.secrets import cursor_key

__all__ = ["InvalidCursor", "decode", "encode"]

_MAC_BYTES = 16


def encode(position: Mapping[str, Any] | None, *, scope: Any = None) -> str | None:
    """A page position (Decimals kept exact) → an opaque URL-safe cursor; None for no position
    (the last page). With a `scope`, the cursor decodes only with an equal one."""
    if not position:
        return None
    text = _json(position)
    return f"{_b64(text)}.{_b64(_mac(text, scope))}"


def decode(
    cursor: str,
    *,
    scope: Any = None,
    fields: Mapping[str, type] | None = None,
    message: str | None = None,
) -> dict[str, Any]:
    """The position `encode` was given with this `scope`. With `fields`, the position must have
    exactly those names, each value of its type (a string not empty). InvalidCursor (its
    `message` if given) for anything else."""
    invalid = InvalidCursor() if message is None else InvalidCursor(message)
    payload, dot, signature = cursor.partition(".")
    try:
        text = _unb64(payload)
        if not dot or not hmac.compare_digest(_unb64(signature), _mac(text, scope)):
            raise invalid
        position = json.loads(text, object_hook=_decimal_value)
    except (binascii.Error, ValueError, UnicodeError, InvalidOperation, RecursionError) as error:
        raise invalid from error
    if not isinstance(position, dict) or (fields is not None and not _shaped(position, fields)):
        raise invalid
    return position


def _shaped(position: dict[str, Any], fields: Mapping[str, type]) -> bool:
    return set(position) == set(fields) and all(
        isinstance(position[name], kind) and (kind is not str or position[name] != "")
        for name, kind in fields.items()
    )


def _mac(text: bytes, scope: Any) -> bytes:
    # A scope is signed before the position, after a NUL no JSON text holds: no (scope, position)
    # pair signs like another pair, nor like an unscoped position.
    signed = text if scope is None else _json(scope) + b"\0" + text
    return hmac.new(cursor_key(), signed, hashlib.sha256).digest()[:_MAC_BYTES]


def _json(value: Any) -> bytes:
    return json.dumps(value, default=_decimal_text, separators=(",", ":"), sort_keys=True).encode()


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode((text + "=" * (-len(text) % 4)).encode("ascii"))


def _decimal_text(value: Any) -> Any:
    if isinstance(value, Decimal):
        return {"$n": str(value)}
    raise TypeError(f"not JSON: {type(value).__name__}")


def _decimal_value(obj: dict[str, Any]) -> Any:
    return Decimal(str(obj["$n"])) if set(obj) == {"$n"} and isinstance(obj["$n"], str) else obj
