"""How many emails a second the account may send: the SesMaxSendRate setting, else SES's own
MaxSendRate (GetAccount), read at most every REFRESH_SECONDS per process. The sender paces
itself by it and fan-out keeps the delivery queue's backlog to a few minutes of it."""

from __future__ import annotations

import logging
import threading

from segmentation.settings import get_settings
from segmentation.storage import email

log = logging.getLogger(__name__)

REFRESH_SECONDS = 600.0
# SES's lowest rate (a new or sandboxed account): used until the rate can be read.
FALLBACK_RATE = 1.0
# A failed read is tried again after this long, not after REFRESH_SECONDS.
RETRY_READ_SECONDS = 60.0

_lock = threading.Lock()
_rate = FALLBACK_RATE
_read_at = float("-inf")
_good_for = REFRESH_SECONDS


def reset_cache() -> None:
    global _rate, _read_at
    with _lock:
        _rate, _read_at = FALLBACK_RATE, float("-inf")


def emails_per_second(now: float) -> float:
    global _rate, _read_at, _good_for
    configured = get_settings().ses_max_send_rate
    if configured > 0:
        return float(configured)
    with _lock:
        if 0 <= now - _read_at < _good_for:
            return _rate
        try:
            rate = email.max_send_rate()
            _good_for = REFRESH_SECONDS
        except Exception as exc:  # whatever went wrong: the lowest rate, and a read again soon
            log.warning("could not read SES's sending rate (%s); %s a second meanwhile", exc, FALLBACK_RATE)
            rate, _good_for = 0.0, RETRY_READ_SECONDS
        _rate, _read_at = (rate if rate > 0 else FALLBACK_RATE), now
        return _rate
