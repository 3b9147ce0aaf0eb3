"""The one codec of opaque page cursors: a JSON position, signed.

A cursor is `<base64url JSON>.<base64url HMAC-SHA256, 16 bytes>`, keyed by a secret of the
stack (storage.secrets.cursor_key). Anything that is not a cursor this API made, altered or
forged, is the same 400 `invalid_cursor`, whatever it decodes to: the signature is checked
before the position is even parsed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from decimal import Decimal, InvalidOperation
from typing import Any

from segmentation.errors import InvalidCursor
from segmentation.storage.secrets import cursor_key

__all__ = ["InvalidCursor", "decode", "encode"]

_MAC_BYTES = 16


def encode(position: Any) -> str:
    """Any JSON-able position (Decimals kept exact) → an opaque URL-safe string."""
    text = json.dumps(position, default=_decimal_text, separators=(",", ":"), sort_keys=True).encode()
    return f"{_b64(text)}.{_b64(_mac(text))}"


def decode(cursor: str) -> Any:
    """The position `encode` was given; InvalidCursor for anything else."""
    payload, dot, signature = cursor.partition(".")
    try:
        text = _unb64(payload)
        if not dot or not hmac.compare_digest(_unb64(signature), _mac(text)):
            raise InvalidCursor()
        return json.loads(text, object_hook=_decimal_value)
    except (binascii.Error, ValueError, UnicodeError, InvalidOperation, RecursionError) as error:
        raise InvalidCursor() from error


def _mac(text: bytes) -> bytes:
    return hmac.new(cursor_key(), text, hashlib.sha256).digest()[:_MAC_BYTES]


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
