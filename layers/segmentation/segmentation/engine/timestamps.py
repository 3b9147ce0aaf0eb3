"""Timestamps as the API speaks them: ISO 8601 with an offset or `Z`, or Unix seconds.

Stored and compared as epoch seconds (float here, `Decimal` in DynamoDB); returned as ISO 8601 UTC.
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal

from segmentation.vocabulary import is_number

# The range datetime can represent, so every accepted timestamp can also be formatted.
MIN_EPOCH = -62135596800.0  # 0001-01-01T00:00:00Z
MAX_EPOCH = 253402300799.0  # 9999-12-31T23:59:59Z
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def parse_timestamp(value: object) -> float:
    """Epoch seconds of an ISO 8601 string with an offset or `Z`, or of Unix seconds.

    Raises ValueError for anything else: naive ISO strings, dates alone, bools, NaN, out of range.
    """
    if is_number(value):
        try:
            epoch = float(value)  # type: ignore[arg-type]
        except OverflowError:
            raise ValueError("timestamp out of range") from None
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError:
            raise ValueError(f"not an ISO 8601 timestamp: {value[:40]!r}") from None
        if parsed.tzinfo is None or parsed.utcoffset() is None:
            raise ValueError("an ISO 8601 timestamp needs an offset or Z, e.g. 2026-11-01T09:30:00Z")
        epoch = parsed.timestamp()
    else:
        raise ValueError("a timestamp is an ISO 8601 string with an offset or Z, or Unix seconds")
    if not math.isfinite(epoch) or not MIN_EPOCH <= epoch <= MAX_EPOCH:
        raise ValueError("timestamp out of range")
    return epoch


def parse_date(value: str) -> date:
    """A calendar date written `YYYY-MM-DD` (ISO 8601 extended). Raises ValueError."""
    if len(value) != 10:
        raise ValueError(f"not an ISO date: {value[:40]!r}")
    return date.fromisoformat(value)


def format_timestamp(epoch: float | int | Decimal) -> str:
    """ISO 8601 UTC with `Z`; milliseconds only when the instant has a fraction of a second."""
    exact = epoch if isinstance(epoch, Decimal) else Decimal(epoch)
    millis = int((exact * 1000).to_integral_value(rounding=ROUND_HALF_EVEN))
    moment = (_EPOCH + timedelta(milliseconds=millis)).replace(tzinfo=None)
    return moment.isoformat(timespec="milliseconds" if millis % 1000 else "seconds") + "Z"
