"""The engine against GrowthBook's evalCondition: same users, same segments, same answers, one process.

Our side does what upkeep does for every changed user: `Workspace.segments_of(record, now)`, all
segments at once, on the record as DynamoDB returns it. GrowthBook's side does what a GrowthBook
user would: `evalCondition(attributes, condition)` per user per segment. Both are timed with
perf_counter_ns in the same run after a warm-up pass, rounds interleaved, best round each.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from growthbook.core import evalCondition
from segmentation.engine import Workspace

from bench import data
from bench.growthbook_side import attributes, conditions_for


@dataclass
class EvalResult:
    users: int
    segments: int
    ns_per_check: float
    growthbook_ns_per_check: float
    growthbook_with_conversion_ns_per_check: float
    ns_per_check_one_filter_at_a_time: float
    disagreements: int
    example_disagreement: str | None

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
            "growthbook_with_conversion_ns_per_check": round(self.growthbook_with_conversion_ns_per_check, 1),
            "ns_per_check_one_filter_at_a_time": round(self.ns_per_check_one_filter_at_a_time, 1),
            "answers_agree": self.disagreements == 0,
            "disagreements": self.disagreements,
        }


def _timed(run: Callable[[], Any]) -> tuple[int, Any]:
    gc.collect()
    start = time.perf_counter_ns()
    result = run()
    return time.perf_counter_ns() - start, result


def run(user_count: int, now: float, rounds: int = 3) -> EvalResult:
    records = data.users(user_count, now)
    workspace = Workspace(data.EVAL_SEGMENTS)
    conditions = conditions_for(data.EVAL_SEGMENTS, now)
    assert {sid for sid, _ in conditions} == set(workspace.segment_ids()), "both sides test the same segments"
    # GrowthBook needs JSON types (it does not see a Decimal as a number). Converting is left out of
    # its headline time, which favours GrowthBook; the time with conversion is reported beside it.
    prepared = [attributes(record) for record in records]
    predicates = [workspace.predicate(definition.filter) for definition in data.EVAL_SEGMENTS]
    predefined = [
        workspace.predicate(workspace.definitions[sid].filter) for sid in ("new", "active", "slipping_away")
    ]
    all_predicates = predefined + predicates
    segments_of = workspace.segments_of

    def ours() -> list[frozenset[str]]:
        return [segments_of(record, now) for record in records]

    def growthbook() -> list[set[str]]:
        return [
            {sid for sid, condition in conditions if evalCondition(attrs, condition)} for attrs in prepared
        ]

    def growthbook_converting() -> list[set[str]]:
        out = []
        for record in records:
            attrs = attributes(record)
            out.append({sid for sid, condition in conditions if evalCondition(attrs, condition)})
        return out

    def ours_one_at_a_time() -> list[list[bool]]:
        return [[predicate(record, now) for predicate in all_predicates] for record in records]

    # Warm-up, and the answers both sides must agree on.
    our_answers, their_answers = ours(), growthbook()
    ours_one_at_a_time()
    disagreements = [
        i for i, (a, b) in enumerate(zip(our_answers, their_answers, strict=True)) if set(a) != b
    ]
    example = None
    if disagreements:
        i = disagreements[0]
        example = (
            f"{records[i]['user_id']}: engine {sorted(our_answers[i])} growthbook {sorted(their_answers[i])}"
        )

    best: dict[str, int] = {}
    for _ in range(rounds):
        for name, side in (
            ("ours", ours),
            ("growthbook", growthbook),
            ("converting", growthbook_converting),
            ("one_at_a_time", ours_one_at_a_time),
        ):
            elapsed, answers = _timed(side)
            if name == "ours":
                assert answers == our_answers
            elif name == "growthbook":
                assert answers == their_answers
            best[name] = min(best.get(name, elapsed), elapsed)
    checks = user_count * len(conditions)
    return EvalResult(
        users=user_count,
        segments=len(conditions),
        ns_per_check=best["ours"] / checks,
        growthbook_ns_per_check=best["growthbook"] / checks,
        growthbook_with_conversion_ns_per_check=best["converting"] / checks,
        ns_per_check_one_filter_at_a_time=best["one_at_a_time"] / checks,
        disagreements=len(disagreements),
        example_disagreement=example,
    )
