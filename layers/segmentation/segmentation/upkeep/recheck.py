"""Time-relative membership: re-evaluate users whose result is due to flip (recheck_at <= now)."""

from __future__ import annotations

from collections.abc import Iterable

from segmentation.engine import Workspace
from segmentation.storage import people_scans
from segmentation.storage.membership_writes import RECHECK_SHARDS
from segmentation.upkeep.refresh import refresh_ids

_BATCH = 100


def recheck_due(workspace: Workspace, now: float, shards: Iterable[int] = range(RECHECK_SHARDS)) -> int:
    """Refresh every due user (each refresh sets the next recheck_at, or removes it). Returns how many."""
    total = 0
    for shard in shards:
        due = list(people_scans.due_for_recheck(shard, now))
        for start in range(0, len(due), _BATCH):
            total += sum(refresh_ids(workspace, "users", due[start : start + _BATCH], now).values())
    return total
