"""Request bodies, parsed once and safely before anything else reads them.

A body is UTF-8 JSON (API.md). Whatever a client sends, the answer is a 4xx, never a 500:
bytes that are not UTF-8, text that is not JSON, nesting deeper than any request needs, numbers
too long to convert, and strings holding lone surrogates (which no storage can encode) are a
400 `malformed_json` saying what is wrong. The parsed value is handed to Powertools' validation,
which does not parse again.
"""

from __future__ import annotations

import base64
import binascii
import json
from decimal import Decimal
from typing import Any

from segmentation.errors import Malformed, PayloadTooLarge

MAX_BODY_BYTES = 256 * 1024
# No request of this API nests deeper (a filter: 6 levels, each two JSON levels deep).
MAX_DEPTH = 64
# Python refuses to convert longer integer strings; such a number is kept as a Decimal, which
# every field then refuses with a 422 of its own (no value here has more than 38 digits).
_MAX_INT_DIGITS = 4000


class MalformedBody(Malformed):
    code = "malformed_json"


def body_bytes(body: str | None, is_base64: bool) -> bytes:
    """The body as sent: 413 over 256 KB, 400 when its base64 or its text is broken."""
    if not body:
        return b""
    try:
        raw = base64.b64decode(body, validate=True) if is_base64 else body.encode("utf-8")
    except (binascii.Error, ValueError) as error:
        raise MalformedBody("The request body could not be read: send UTF-8 JSON.") from error
    except UnicodeEncodeError as error:
        raise MalformedBody("The request body is not valid UTF-8: send UTF-8 JSON.") from error
    if len(raw) > MAX_BODY_BYTES:
        raise PayloadTooLarge(
            f"The request body is {len(raw)} bytes; the limit is {MAX_BODY_BYTES} bytes (256 KB)."
        )
    return raw


def parse(raw: bytes) -> Any:
    """The JSON value of a body (None for an empty one), or MalformedBody."""
    if not raw:
        return None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise MalformedBody(
            f"The request body is not valid UTF-8 (byte {error.start}): send UTF-8 JSON."
        ) from error
    try:
        # NaN and Infinity parse (as Python does); every field refuses them with a 422 and its path.
        value = json.loads(text, parse_int=_integer)
    except RecursionError as error:
        raise MalformedBody(f"The request body nests deeper than {MAX_DEPTH} levels.") from error
    except ValueError as error:  # json.JSONDecodeError included
        raise MalformedBody(f"The request body is not valid JSON: {error}.") from error
    _check(value)
    return value


def _integer(text: str) -> int | Decimal:
    return Decimal(text) if len(text) > _MAX_INT_DIGITS else int(text)


def _check(value: Any) -> None:
    """Depth and lone surrogates, without recursion (the value may be about a thousand deep)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        current, depth = stack.pop()
        if isinstance(current, str):
            _check_text(current)
        elif isinstance(current, dict | list):
            if depth > MAX_DEPTH:
                raise MalformedBody(f"The request body nests deeper than {MAX_DEPTH} levels.")
            if isinstance(current, dict):
                for key, item in current.items():
                    _check_text(key)
                    stack.append((item, depth + 1))
            else:
                stack.extend((item, depth + 1) for item in current)


def _check_text(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        raise MalformedBody(
            "The request body holds a lone surrogate (\\ud800-\\udfff): that is not Unicode text."
        ) from error
