"""The one source of time. Nothing else calls datetime.now() or time.time().

Deployed, the offset is always 0. The local stack and tests move it to travel in time
(`POST /_local/clock`); every function in the process sees the same now.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

_offset_seconds: float = 0.0


def now() -> float:
    """Now as Unix epoch seconds (float)."""
    return time.time() + _offset_seconds


def now_datetime() -> datetime:
    return datetime.fromtimestamp(now(), tz=UTC)


def offset_seconds() -> float:
    return _offset_seconds


def set_offset_seconds(seconds: float) -> None:
    global _offset_seconds
    _offset_seconds = float(seconds)
