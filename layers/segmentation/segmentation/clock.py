"""The one source of time. Nothing else calls datetime.now() or time.time().

Deployed, the offset is always 0. The local stack and tests move it to travel in time
(`POST /_local/clock`); every function in the process sees the same now.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

_offset_seconds: float = 0.0
_sleep: Callable[[float], None] = time.sleep


def now() -> float:
    """Now as Unix epoch seconds (float)."""
    return time.time() + _offset_seconds


def real_now() -> float:
    """The real time, whatever the offset: for what other systems check against their own clocks
    (a webhook's `webhook-timestamp`)."""
    return time.time()


def now_datetime() -> datetime:
    return datetime.fromtimestamp(now(), tz=UTC)


def offset_seconds() -> float:
    return _offset_seconds


def set_offset_seconds(seconds: float) -> None:
    global _offset_seconds
    _offset_seconds = float(seconds)


def sleep(seconds: float) -> None:
    """Wait `seconds` of this clock's time (the sender's pace). A simulation that moves the
    clock itself (bench/delivery.py) replaces the waiting with `set_sleeper`."""
    if seconds > 0:
        _sleep(seconds)


def set_sleeper(sleeper: Callable[[float], None] | None) -> None:
    global _sleep
    _sleep = sleeper or time.sleep
