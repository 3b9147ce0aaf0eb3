"""How many users or companies match a filter at this instant (POST /v1/users/count), cheaply.

- A filter that is one segment (`{"field": "segment", "op": "in_segment", "value": id}`) is
  answered from its stored count: exact, one read.
- Otherwise the table is read a page at a time. When it ends within EXACT_SCAN_LIMIT records,
  the count is exact (what paging through search would give).
- Past that, the answer is an unbiased estimate from a uniform sample: the table is split into
  parallel-scan segments of about SEGMENT_SIZE records each (by DynamoDB's hash, so each segment
  is a random slice), SAMPLE_SEGMENTS of them are read whole, and the count is the total scaled
  up; `margin` is the 95% half-width of that estimate (cluster sampling, with the finite
  population correction). On ten million users this reads about 10,000 records.
Nothing is written but the answer, to the count cache: for CACHE_SECONDS an answer is given
again (with the `as_of` it was taken at) to any instance asking the same count, so a caller
looping on one filter costs one GetItem a call instead of a read of the table (API.md allows
answers up to 60 seconds old). The cache key is a digest of the target, the filter in canonical
JSON, and, when the filter names stored segments, the version of the definitions it was
evaluated with: after a segment is edited, a filter naming it is counted afresh. One stored
segment is not cached: its stored count is one read already, exact now.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from segmentation import definitions
from segmentation.engine import validate_filter
from segmentation.engine.segments import PREDEFINED_IDS, raw_references
from segmentation.people.attributes import all_types as all_attribute_types
from segmentation.people.evaluable import Evaluator
from segmentation.storage import count_cache, memberships, people_scans
from segmentation.values import epoch_millis
from segmentation.vocabulary import Target

EXACT_SCAN_LIMIT = 5_000
SEGMENT_SIZE = 500
SAMPLE_SEGMENTS = 20
_PAGE = 1_000
_Z95 = 1.959964
CACHE_SECONDS = 60


@dataclass(frozen=True)
class Count:
    count: int
    exact: bool
    margin: int


@dataclass(frozen=True)
class Answer:
    found: Count
    as_of: float  # when it was counted (epoch seconds, to the millisecond)


def cached_count(target: Target, raw_filter: Any, now: float) -> Answer:
    """The count at `now`, or the same count taken less than CACHE_SECONDS ago."""
    evaluator = _checked(target, raw_filter)
    stored = _stored_count(raw_filter, evaluator)
    if stored is not None:
        return Answer(stored, now)
    key = cache_key(target, raw_filter, evaluator.workspace.version)
    hit = count_cache.get(key)
    if hit is not None and 0 <= now - float(hit["as_of"]) < CACHE_SECONDS:
        return Answer(Count(int(hit["count"]), bool(hit["exact"]), int(hit["margin"])), float(hit["as_of"]))
    as_of = epoch_millis(now)
    found = _counted(target, raw_filter, evaluator, now, None)
    count_cache.put(
        key,
        count=found.count,
        exact=found.exact,
        margin=found.margin,
        as_of=as_of,
        keep_seconds=CACHE_SECONDS,
    )
    return Answer(found, float(as_of))


def cache_key(target: Target, raw_filter: Any, definitions_version: int) -> str:
    """The same for the same count: key order in the filter does not matter, the target does,
    and so does the definitions' version when the filter names a stored segment."""
    names_stored = bool(set(raw_references(raw_filter)) - PREDEFINED_IDS)
    canonical = json.dumps(
        [target, definitions_version if names_stored else None, raw_filter],
        sort_keys=True,
        separators=(",", ":"),
        allow_nan=False,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def count(target: Target, raw_filter: Any, now: float, rng: random.Random | None = None) -> Count:
    """The count at `now`, uncached."""
    evaluator = _checked(target, raw_filter)
    stored = _stored_count(raw_filter, evaluator)
    return stored if stored is not None else _counted(target, raw_filter, evaluator, now, rng)


def _checked(target: Target, raw_filter: Any) -> Evaluator:
    """The filter validated (a 422 otherwise), and the records to evaluate it with."""
    defs = definitions.segment_defs()
    validate_filter(
        raw_filter, target=target, attributes=all_attribute_types(raw_filter), segments=defs, path="filter"
    )
    return Evaluator(definitions.load_workspace())


def _stored_count(raw_filter: Any, evaluator: Evaluator) -> Count | None:
    segment_id = _single_segment(raw_filter)
    if segment_id is not None and segment_id not in evaluator.workspace.broken:
        return Count(memberships.count(memberships.segment_group(segment_id)), True, 0)
    return None


def _counted(
    target: Target, raw_filter: Any, evaluator: Evaluator, now: float, rng: random.Random | None
) -> Count:
    matches = evaluator.workspace.predicate(raw_filter, target)
    companies = target == "users" and evaluator.reads_company_fields(raw_filter)

    def matching(items: list[dict[str, Any]]) -> int:
        return sum(
            1 for record in evaluator.of(target, items, companies=companies or None) if matches(record, now)
        )

    found, scanned, cursor = 0, 0, None
    while scanned < EXACT_SCAN_LIMIT:
        items, cursor = people_scans.scan_slice(target, 0, 1, cursor, min(_PAGE, EXACT_SCAN_LIMIT - scanned))
        found += matching(items)
        scanned += len(items)
        if cursor is None:
            return Count(found, True, 0)
    total_segments = max(SAMPLE_SEGMENTS * 2, people_scans.approximate_count(target) // SEGMENT_SIZE)
    chosen = (rng or random.SystemRandom()).sample(range(total_segments), SAMPLE_SEGMENTS)
    per_segment = []
    for segment in chosen:
        hits, cursor = 0, None
        while True:
            items, cursor = people_scans.scan_slice(target, segment, total_segments, cursor, _PAGE)
            hits += matching(items)
            if cursor is None:
                break
        per_segment.append(hits)
    return estimate(per_segment, total_segments)


def estimate(per_segment: Sequence[int], total_segments: int) -> Count:
    """Total and 95% half-width from the matches of a simple random sample of segments."""
    k = len(per_segment)
    mean = sum(per_segment) / k
    variance = sum((hits - mean) ** 2 for hits in per_segment) / (k - 1) if k > 1 else 0.0
    correction = 1 - k / total_segments
    margin = _Z95 * total_segments * math.sqrt(max(variance, 0.0) / k * correction)
    return Count(round(total_segments * mean), False, math.ceil(margin))


def _single_segment(raw: Any) -> str | None:
    if isinstance(raw, dict) and raw.get("field") == "segment" and raw.get("op") == "in_segment":
        value = raw.get("value")
        return value if isinstance(value, str) else None
    return None
