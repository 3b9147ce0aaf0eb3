"""The segment definitions this process evaluates with: the predefined segments and the stored ones
(storage.segments), compiled into one Workspace.

Every definition is read with one Scan and compiled once per process, revalidated by one GetItem
of `#meta.version` at most once a second, and at once after this process changed a segment: a
write that changes the definitions (a segment's, or a tag's delete that moves their version)
runs inside `changing()`, so this process reads its own writes.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from segmentation import clock
from segmentation.engine import PREDEFINED_SEGMENTS, SegmentDef, Workspace
from segmentation.settings import get_settings
from segmentation.storage import aws
from segmentation.storage import segments as segment_store
from segmentation.storage.segments import SegmentRecord

REVALIDATE_SECONDS = 1.0


def definition_of(record: SegmentRecord) -> SegmentDef:
    return SegmentDef(
        id=record.id,
        name=record.name,
        target=record.target,
        filter=record.filter,
        predefined=record.predefined,
    )


_PREDEFINED_ORDER = {d.id: index for index, d in enumerate(PREDEFINED_SEGMENTS)}


def _predefined_records() -> dict[str, SegmentRecord]:
    return {
        d.id: SegmentRecord(
            id=d.id,
            name=d.name,
            target=d.target,
            filter=d.filter,
            predefined=True,
            created_at=None,
            updated_at=None,
        )
        for d in PREDEFINED_SEGMENTS
    }


# --- the process-wide cache ------------------------------------------------------------------


@dataclass
class _Snapshot:
    # The boto3 resource it was read through: a new mock or stack makes a new resource (aws.reset),
    # and a snapshot of another one is never trusted.
    resource: Any
    version: int
    records: dict[str, SegmentRecord]
    checked_at: float
    workspace: Workspace | None = field(default=None)


_lock = threading.Lock()
_snapshot: _Snapshot | None = None


def reset_cache() -> None:
    """Forget the cached definitions (tests; and after this process changes a segment)."""
    global _snapshot
    with _lock:
        _snapshot = None


@contextmanager
def changing() -> Iterator[None]:
    """Around a write that changes the definitions: however it ends (written, refused, failed),
    this process reads them again at next use."""
    try:
        yield
    finally:
        reset_cache()


def _scan_records() -> dict[str, SegmentRecord]:
    records = _predefined_records()
    for record in segment_store.scan():
        records[record.id] = record
    return records


def _current(*, check_now: bool = False) -> _Snapshot:
    """The current snapshot; `check_now` skips the once-a-second allowance (used before writes)."""
    global _snapshot
    with _lock:
        now = clock.now()
        resource = aws.dynamodb()
        cached = _snapshot
        if cached is not None and cached.resource is resource:
            if not check_now and 0 <= now - cached.checked_at < REVALIDATE_SECONDS:
                return cached
            # Read the version before the data: the snapshot's version is never newer than its data.
            version = segment_store.read_version()
            if version == cached.version:
                cached.checked_at = now
                return cached
        else:
            version = segment_store.read_version()
        _snapshot = _Snapshot(resource=resource, version=version, records=_scan_records(), checked_at=now)
        return _snapshot


def load_workspace(*, check_now: bool = False) -> Workspace:
    """Every segment definition, compiled once per version and reused for every record.

    `check_now` reads the version now (one GetItem) instead of trusting a check made within the
    last second: upkeep uses it once a write's version guard found the definitions changed.
    """
    snapshot = _current(check_now=check_now)
    with _lock:
        if snapshot.workspace is None:
            snapshot.workspace = Workspace(
                [definition_of(r) for r in snapshot.records.values()],
                timezone=get_settings().timezone,
                version=snapshot.version,
            )
        return snapshot.workspace


def segment_defs(*, check_now: bool = False) -> dict[str, SegmentDef]:
    return {sid: definition_of(r) for sid, r in _current(check_now=check_now).records.items()}


def records(target: str | None = None, *, check_now: bool = False) -> list[SegmentRecord]:
    """Definitions of one target (or all): predefined first, then stored ones oldest first."""
    chosen = [r for r in _current(check_now=check_now).records.values() if target in (None, r.target)]
    return sorted(
        chosen, key=lambda r: (_PREDEFINED_ORDER.get(r.id, len(_PREDEFINED_ORDER)), r.created_at or 0.0, r.id)
    )


def get(segment_id: str, *, check_now: bool = False) -> SegmentRecord | None:
    return _current(check_now=check_now).records.get(segment_id)


def version(*, check_now: bool = False) -> int:
    """The version the current definitions were read at: pass it to a write as `expected_version`."""
    return _current(check_now=check_now).version
