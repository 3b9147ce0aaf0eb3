"""The one codec of opaque page cursors: a JSON position as unpadded base64url text.

Every paginated route (members, search, deliveries, API keys) encodes its position here, and a
cursor that is not one we made is always the same 400 `invalid_cursor`, never a 500.
"""

from __future__ import annotations

import base64
import binascii
import json
from decimal import Decimal
from typing import Any

from segmentation.errors import Malformed


class InvalidCursor(Malformed):
    code = "invalid_cursor"

    def __init__(
        self, message: str = "The cursor is not valid: pass back a next_cursor exactly as it was returned."
    ):
        super().__init__(message, [{"path": "cursor", "message": "not a cursor this API returned"}])


def encode(position: Any) -> str:
    """Any JSON-able position (Decimals kept exact) → an opaque URL-safe string."""
    text = json.dumps(position, default=_decimal_text, separators=(",", ":"), sort_keys=True)
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode(cursor: str) -> Any:
    """The position `encode` was given; InvalidCursor for anything else."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        return json.loads(base64.urlsafe_b64decode(padded.encode("ascii")), object_hook=_decimal_value)
    except (binascii.Error, ValueError, UnicodeError) as error:
        raise InvalidCursor() from error


def _decimal_text(value: Any) -> Any:
    if isinstance(value, Decimal):
        return {"$n": str(value)}
    raise TypeError(f"not JSON: {type(value).__name__}")


def _decimal_value(obj: dict[str, Any]) -> Any:
    return Decimal(str(obj["$n"])) if set(obj) == {"$n"} and isinstance(obj["$n"], str) else obj
