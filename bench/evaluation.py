"""The engine against GrowthBook's evalCondition: same users, same segments, same answers, one process.

Our side does what upkeep does for every changed user: `Workspace.segments_of(record, now)`, all
segments at once, on the record as DynamoDB returns it. GrowthBook's side does what a GrowthBook
user would with the same record: turn it into JSON types once (GrowthBook does not take a Decimal
for a number), then `evalCondition(attributes, condition)` per segment. Its time from attributes
converted beforehand is reported too. Both are timed with perf_counter_ns in the same run after a
warm-up pass; ns_per_check = total / (users x segments) on every side.
"""

from __future__ import annotations

import gc
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from growthbook.core import evalCondition
from segmentation.engine import SegmentDef, Workspace
from segmentation.event_summaries.stored import added

from bench import data
from bench.growthbook_side import attributes, conditions_for

DAY = 86400


@dataclass
class EvalResult:
    users: int
    segments: int
    ns_per_check: float
    growthbook_ns_per_check: float  # from the DynamoDB records: converting them is part of its work
    growthbook_json_input_ns_per_check: float  # from attributes converted beforehand, untimed
    ns_per_check_one_filter_at_a_time: float
    disagreements: int
    example_disagreement: str | None
    event_ns_per_check: float = 0.0  # segments on events (windows, first/last), users with summaries

    @property
    def speedup(self) -> float:
        return self.growthbook_ns_per_check / self.ns_per_check

    def as_json(self) -> dict[str, Any]:
        return {
            "users": self.users,
            "segments": self.segments,
            "ns_per_check": round(self.ns_per_check, 1),
            "growthbook_ns_per_check": round(self.growthbook_ns_per_check, 1),
            "speedup_vs_growthbook": round(self.speedup, 1),
            "growthbook_json_input_ns_per_check": round(self.growthbook_json_input_ns_per_check, 1),
            "speedup_vs_growthbook_json_input": round(
                self.growthbook_json_input_ns_per_check / self.ns_per_check, 1
            ),
            "ns_per_check_one_filter_at_a_time": round(self.ns_per_check_one_filter_at_a_time, 1),
            "event_ns_per_check": round(self.event_ns_per_check, 1),
            "answers_agree": self.disagreements == 0,
            "disagreements": self.disagreements,
        }


def _timed(side: Callable[[list[dict[str, Any]]], Any], users: list[dict[str, Any]]) -> tuple[int, Any]:
    start = time.perf_counter_ns()
    result = side(users)
    return time.perf_counter_ns() - start, result


_CHUNK = 250  # users per timed slice: short enough that a burst of load hits one slice, not a side


def run(user_count: int, now: float, rounds: int = 3) -> EvalResult:
    """Time both sides on the same users; each slice of users is timed on every side in turn, every
    round, and the best time of each (side, slice) is kept, so noise from a shared machine lands
    on single slices instead of on one side."""
    records = data.users(user_count, now)
    workspace = Workspace(data.EVAL_SEGMENTS)
    conditions = conditions_for(data.EVAL_SEGMENTS, now)
    assert {sid for sid, _ in conditions} == set(workspace.segment_ids()), "both sides test the same segments"
    prepared = [attributes(record) for record in records]
    predicates = [workspace.predicate(workspace.definitions[sid].filter) for sid, _ in conditions]
    segments_of = workspace.segments_of

    def ours(users: list[dict[str, Any]]) -> list[frozenset[str]]:
        return [segments_of(record, now) for record in users]

    def growthbook(users: list[dict[str, Any]]) -> list[set[str]]:
        # GrowthBook does not see a Decimal as a number: a record must become JSON types first.
        out = []
        for record in users:
            attrs = attributes(record)
            out.append({sid for sid, condition in conditions if evalCondition(attrs, condition)})
        return out

    def growthbook_json_input(users: list[dict[str, Any]]) -> list[set[str]]:
        return [{sid for sid, condition in conditions if evalCondition(attrs, condition)} for attrs in users]

    def ours_one_at_a_time(users: list[dict[str, Any]]) -> list[list[bool]]:
        return [[predicate(record, now) for predicate in predicates] for record in users]

    # Warm-up, and the answers every side must give.
    our_answers, their_answers = ours(records), growthbook(records)
    assert growthbook_json_input(prepared) == their_answers
    ours_one_at_a_time(records)
    disagreements = [
        i for i, (a, b) in enumerate(zip(our_answers, their_answers, strict=True)) if set(a) != b
    ]
    example = None
    if disagreements:
        i = disagreements[0]
        example = (
            f"{records[i]['user_id']}: engine {sorted(our_answers[i])} growthbook {sorted(their_answers[i])}"
        )

    sides: dict[str, tuple[Callable[[list[dict[str, Any]]], Any], list[dict[str, Any]], list[Any]]] = {
        "ours": (ours, records, our_answers),
        "growthbook": (growthbook, records, their_answers),
        "growthbook_json_input": (growthbook_json_input, prepared, their_answers),
        "one_at_a_time": (ours_one_at_a_time, records, []),
    }
    slices = [slice(start, start + _CHUNK) for start in range(0, user_count, _CHUNK)]
    best: dict[tuple[str, int], int] = {}
    gc.collect()
    gc.disable()  # a collection would land on whichever side happens to allocate at that moment
    try:
        for _ in range(rounds):
            for index, part in enumerate(slices):
                for name, (side, inputs, expected) in sides.items():
                    elapsed, answers = _timed(side, inputs[part])
                    if expected:
                        assert answers == expected[part], f"{name} changed its answers between runs"
                    best[name, index] = min(best.get((name, index), elapsed), elapsed)
    finally:
        gc.enable()
    checks = user_count * len(conditions)

    def per_check(name: str) -> float:
        return sum(best[name, i] for i in range(len(slices))) / checks

    return EvalResult(
        event_ns_per_check=_event_conditions(records, now, rounds),
        users=user_count,
        segments=len(conditions),
        ns_per_check=per_check("ours"),
        growthbook_ns_per_check=per_check("growthbook"),
        growthbook_json_input_ns_per_check=per_check("growthbook_json_input"),
        ns_per_check_one_filter_at_a_time=per_check("one_at_a_time"),
        disagreements=len(disagreements),
        example_disagreement=example,
    )


EVENT_SEGMENTS = [
    SegmentDef(
        "engaged_uploaders",
        "Engaged uploaders",
        "users",
        {"field": "event.uploaded_photo.count", "op": "gte", "value": 3, "within_days": 7},
    ),
    SegmentDef(
        "uploaded_this_month",
        "Uploaded this month",
        "users",
        {"field": "event.uploaded_photo.count", "op": "gte", "value": 1, "within_days": 30},
    ),
    SegmentDef(
        "never_invited",
        "Never invited",
        "users",
        {"field": "event.invited_teammate.count", "op": "eq", "value": 0},
    ),
    SegmentDef(
        "exported_lately",
        "Exported lately",
        "users",
        {"field": "event.exported_report.last_at", "op": "less_than_days_ago", "value": 30},
    ),
]


def _event_conditions(records: list[dict[str, Any]], now: float, rounds: int) -> float:
    """ns per user-segment check of event segments, on users with up to three events' summaries
    (a few dozen events each over 60 days): what upkeep does for an event-based workspace."""
    rng = random.Random(11)
    users = []
    for record in records:
        events: dict[str, Any] = {}
        for name in ("uploaded_photo", "invited_teammate", "exported_report"):
            if rng.random() < 0.6:
                summary = None
                for _ in range(rng.randint(1, 40)):
                    summary = added(summary, Decimal(int(now - rng.uniform(0, 60) * DAY)), now)
                events[name] = summary
        users.append({**record, "events": events})
    workspace = Workspace(EVENT_SEGMENTS)
    segments_of = workspace.segments_of
    best = None
    for _ in range(rounds):
        gc.collect()
        gc.disable()
        try:
            elapsed, _ = _timed(lambda batch: [segments_of(user, now) for user in batch], users)
        finally:
            gc.enable()
        best = elapsed if best is None else min(best, elapsed)
    assert best is not None
    return best / (len(users) * len(workspace.segment_ids()))
