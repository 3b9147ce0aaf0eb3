"""Rebuild CPU at growing sizes: evaluate + diff every user, engine only (no AWS).

Per user this is the CPU a rebuild worker spends besides its DynamoDB calls: `segments_of`,
`next_change` (when the user's result flips by time alone) and `plan_update` (the diff against the
stored membership). Users are generated a chunk at a time outside the timed part, so memory stays
flat at 100k users; CPU is `time.process_time`, so waiting on a busy machine is not counted.
Each chunk is timed twice and the lower time kept: on a shared virtual machine CPU time itself
stretches when a neighbour is busy, and a burst should land on one pass, not on one point.
"""

from __future__ import annotations

import gc
import time
from dataclasses import dataclass
from typing import Any

from segmentation.engine import Workspace
from segmentation.upkeep.diff import plan_update

from bench import data

_CHUNK = 5000
_PASSES = 2
_PREDEFINED = 3


@dataclass
class ScalePoint:
    users: int
    segments: int
    rebuild_cpu_s: float
    changed: int

    @property
    def ns_per_user_segment(self) -> float:
        return self.rebuild_cpu_s * 1e9 / (self.users * self.segments)

    def as_json(self) -> dict[str, Any]:
        return {
            "users": self.users,
            "segments": self.segments,
            "rebuild_cpu_s": round(self.rebuild_cpu_s, 4),
            "ns_per_user_segment": round(self.ns_per_user_segment, 1),
        }


def workspace_of(segment_count: int) -> Workspace:
    """`segment_count` user segments in all: the three predefined and generated ones."""
    return Workspace(data.generated_segments(segment_count - _PREDEFINED))


def run(user_counts: tuple[int, ...], segment_counts: tuple[int, ...], now: float) -> list[ScalePoint]:
    workspaces = {count: workspace_of(count) for count in segment_counts}
    for workspace in workspaces.values():  # warm-up: first calls fill the engine's small caches
        for record in data.iter_users(200, now, seed=1):
            workspace.segments_of(record, now)
            workspace.next_change(record, now)
    points = []
    for users in user_counts:
        cpu = dict.fromkeys(segment_counts, 0.0)
        changed = dict.fromkeys(segment_counts, 0)
        generator = data.iter_users(users, now)
        done = 0
        while done < users:
            chunk = [next(generator) for _ in range(min(_CHUNK, users - done))]
            done += len(chunk)
            for count, workspace in workspaces.items():
                cpu_s, n = min(_rebuild_chunk(workspace, chunk, now) for _ in range(_PASSES))
                cpu[count] += cpu_s
                changed[count] += n
        points += [ScalePoint(users, count, cpu[count], changed[count]) for count in segment_counts]
    return points


def _rebuild_chunk(workspace: Workspace, records: list[dict[str, Any]], now: float) -> tuple[float, int]:
    segments_of, next_change = workspace.segments_of, workspace.next_change
    changed = 0
    gc.collect()
    start = time.process_time()
    for record in records:
        update = plan_update("users", record, segments_of(record, now), next_change(record, now))
        if not update.is_noop:
            changed += 1
    return time.process_time() - start, changed


def linearity(points: list[ScalePoint]) -> float:
    """max/min of the cost per user-segment over all sizes: 1.0 is perfectly linear."""
    costs = [p.ns_per_user_segment for p in points]
    return max(costs) / min(costs)
