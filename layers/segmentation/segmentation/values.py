"""Numbers and timestamps as records keep them: conversions shared by every part (no AWS, no HTTP).

Records keep timestamps as epoch seconds and every number as a `Decimal` DynamoDB can hold, so
filters compare numbers and nothing is lost on the way in or out.
"""

from __future__ import annotations

import math
import re
from decimal import ROUND_FLOOR, Context, Decimal, InvalidOperation
from typing import Any

from segmentation.engine import timestamps as engine_timestamps

MAX_STRING_LENGTH = 255

# DynamoDB numbers: up to 38 significant digits, magnitude within [1e-130, 1e126).
_MAX_DIGITS = 38
_MAX_MAGNITUDE = Decimal("1e126")
_MIN_MAGNITUDE = Decimal("1e-130")
# Drops trailing zeros without rounding: a storable number has at most this many digits left.
_STORABLE = Context(prec=_MAX_DIGITS)


def to_number(value: Any) -> Decimal:
    """A JSON number as a Decimal DynamoDB can store; ValueError (with a readable reason) otherwise.

    The one rule for every number a request brings (API.md): at most 38 significant digits,
    magnitude from 1e-130 to below 1e126, or 0. Every input path (user and company fields, custom
    attributes, event metadata, timestamps) converts through here.
    """
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise ValueError("must be a number")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("must be a finite number")
    try:
        # str() of a float is its shortest exact repr, so 0.1 stays 0.1.
        number = Decimal(value) if isinstance(value, int | Decimal) else Decimal(str(value))
    except InvalidOperation as error:
        raise ValueError("must be a number") from error
    if not number.is_finite():
        raise ValueError("must be a finite number")
    if number == 0:
        return Decimal(0)
    if abs(number) >= _MAX_MAGNITUDE or abs(number) < _MIN_MAGNITUDE:
        raise ValueError("is out of the storable range (magnitude 1e-130 to 1e125)")
    # Count significant digits by hand: normalize() would round to the context's 28 digits.
    digits = "".join(map(str, number.as_tuple().digits)).strip("0")
    if len(digits) > _MAX_DIGITS:
        raise ValueError(f"has more than {_MAX_DIGITS} significant digits")
    if len(number.as_tuple().digits) > _MAX_DIGITS:
        # 10**40 arrives as 41 digits, 40 of them trailing zeros; boto3 refuses to send a number
        # of more than 38 digits (it would round), so it is kept as DynamoDB would: 1E+40.
        return number.normalize(_STORABLE)
    return number


def parse_timestamp(value: Any) -> Decimal:
    """ISO 8601 with an offset or Z, or Unix seconds → epoch seconds as a storable Decimal."""
    return to_number(engine_timestamps.parse_timestamp(value))


def format_timestamp(epoch: Decimal | float | int) -> str:
    """Epoch seconds → ISO 8601 UTC with Z (milliseconds only when there is a fraction)."""
    return engine_timestamps.format_timestamp(epoch)


def epoch_millis(now: float) -> Decimal:
    """An instant stored to the millisecond, rounded down so it is never after `now` itself."""
    return Decimal(str(now)).quantize(Decimal("0.001"), rounding=ROUND_FLOOR)


def json_number(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


# Control characters (C0, DEL) and lone surrogates: none belongs in an id, a name or a line of
# text, and a lone surrogate cannot even be stored (it is not Unicode).
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_CONTROL_BUT_LAYOUT = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def one_line(text: str) -> str:
    """An id, a name, an email...: no control characters, no lone surrogates."""
    if _CONTROL.search(text):
        raise ValueError("must not hold control characters")
    return _encodable(text)


def text_block(text: str) -> str:
    """Free text (a template, an attribute value): tabs and line breaks allowed, no other
    control character, no lone surrogate."""
    if _CONTROL_BUT_LAYOUT.search(text):
        raise ValueError("must not hold control characters other than tabs and line breaks")
    return _encodable(text)


def _encodable(text: str) -> str:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        raise ValueError("must be Unicode text (it holds a lone surrogate)") from error
    return text
