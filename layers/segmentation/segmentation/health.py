"""What upkeep and messaging had to skip: a definition that cannot be evaluated is skipped for
the record at hand, and everything else goes on. Each skip is counted (the functions publish the
count as the metric `EvaluationsSkipped`, which an alarm watches) and logged once per process
and definition, with ids only."""

from __future__ import annotations

import logging
import threading
import traceback

logger = logging.getLogger(__name__)

_lock = threading.Lock()
_skipped = 0
_logged: set[tuple[str, str]] = set()
_FRAMES = 6


def skipped(kind: str, definition_id: str, reason: str) -> None:
    """A segment or message (`kind`) could not be evaluated for one record."""
    global _skipped
    with _lock:
        _skipped += 1
        first = (kind, definition_id) not in _logged
        _logged.add((kind, definition_id))
    if first:
        logger.error(
            "skipped a definition that cannot be evaluated",
            extra={"kind": kind, "definition_id": definition_id, "reason": reason},
        )


def error_fields(error: BaseException) -> dict[str, str]:
    """What a log may say of an exception: its type and where it was raised, never its message
    (which can quote a value a client sent: an email, a name, a key)."""
    frames = traceback.extract_tb(error.__traceback__)[-_FRAMES:]
    where = " > ".join(f"{frame.filename.rsplit('/', 1)[-1]}:{frame.lineno} {frame.name}" for frame in frames)
    return {"error_type": type(error).__name__, "raised_at": where}


def take_skipped() -> int:
    """How many skips happened since the last call (the functions publish it as a metric)."""
    global _skipped
    with _lock:
        count, _skipped = _skipped, 0
        return count
