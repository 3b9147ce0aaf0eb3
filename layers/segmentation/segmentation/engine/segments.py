"""Segment definitions, the predefined segments, and the reference graph between segments."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class SegmentDef:
    id: str
    name: str
    target: str  # "users" | "companies"
    filter: dict[str, Any]  # the raw filter JSON
    predefined: bool = False


def _since(field: str, op: str, days: int) -> dict[str, Any]:
    return {"field": field, "op": op, "value": days}


PREDEFINED_SEGMENTS: tuple[SegmentDef, ...] = (
    SegmentDef("new", "New", "users", _since("signed_up_at", "less_than_days_ago", 1), True),
    SegmentDef("active", "Active", "users", _since("last_seen_at", "less_than_days_ago", 30), True),
    SegmentDef(
        "slipping_away",
        "Slipping away",
        "users",
        {
            "or": [
                _since("last_seen_at", "more_than_days_ago", 30),
                {
                    "and": [
                        {"field": "last_seen_at", "op": "not_exists"},
                        _since("signed_up_at", "more_than_days_ago", 30),
                    ]
                },
            ]
        },
        True,
    ),
)
PREDEFINED_IDS = frozenset(segment.id for segment in PREDEFINED_SEGMENTS)


def with_predefined(segments: Iterable[SegmentDef]) -> dict[str, SegmentDef]:
    """The given segments by id, plus the predefined ones (always present) where not given."""
    by_id = {segment.id: segment for segment in PREDEFINED_SEGMENTS}
    by_id.update((segment.id, segment) for segment in segments)
    return by_id


def raw_references(raw: Any) -> list[str]:
    """Segment ids a raw filter refers to, tolerant of malformed parts (which validation reports)."""
    found: list[str] = []
    stack: list[tuple[Any, int]] = [(raw, 0)]
    while stack:
        node, depth = stack.pop()
        if depth > 50 or not isinstance(node, dict):
            continue
        if node.get("field") == "segment" and isinstance(node.get("value"), str):
            found.append(node["value"])
        for key in ("and", "or"):
            if isinstance(node.get(key), list):
                stack.extend((child, depth + 1) for child in node[key])
        if "not" in node:
            stack.append((node["not"], depth + 1))
    return found


def find_cycle(start: Iterable[str], edges: Mapping[str, Iterable[str]]) -> list[str] | None:
    """A cycle reachable from `start` as the list of ids along it (first == last), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    for root in start:
        if state.get(root) == 2:
            continue
        path = [root]
        iterators = [iter(edges.get(root, ()))]
        state[root] = 1
        while iterators:
            child = next(iterators[-1], None)
            if child is None:
                state[path.pop()] = 2
                iterators.pop()
            elif state.get(child) == 1:
                return [*path[path.index(child) :], child]
            elif child not in state and child in edges:
                state[child] = 1
                path.append(child)
                iterators.append(iter(edges[child]))
    return None


def dependency_order(edges: Mapping[str, Iterable[str]], wanted: Iterable[str]) -> list[str]:
    """`wanted` and everything they refer to, each after what it refers to. Assumes no cycles."""
    order: list[str] = []
    seen: set[str] = set()
    for root in wanted:
        stack: list[tuple[str, bool]] = [(root, False)]
        while stack:
            node, expanded = stack.pop()
            if expanded:
                order.append(node)
                continue
            if node in seen:
                continue
            seen.add(node)
            stack.append((node, True))
            stack.extend((child, False) for child in edges.get(node, ()) if child not in seen)
    return order


# --- the graph of segment references ---------------------------------------------------------


def _conditions(node: Any) -> Iterable[Mapping[str, Any]]:
    """Every condition of a filter, whatever its nesting (tolerant of malformed nodes)."""
    stack = [node]
    while stack:
        current = stack.pop()
        if not isinstance(current, Mapping):
            continue
        if "and" in current or "or" in current:
            children = current.get("and", current.get("or"))
            if isinstance(children, list):
                stack.extend(children)
        elif "not" in current:
            stack.append(current["not"])
        elif "field" in current:
            yield current


def referenced_segment_ids(filter_: Any) -> set[str]:
    """Ids of the segments a filter names directly in `in_segment` / `not_in_segment`."""
    return {
        condition["value"]
        for condition in _conditions(filter_)
        if condition.get("field") == "segment" and isinstance(condition.get("value"), str)
    }


def referenced_tag_ids(filter_: Any) -> set[str]:
    """Ids of the tags a filter tests (`has_tag` / `not_has_tag`), at any depth."""
    return {
        condition["value"]
        for condition in _conditions(filter_)
        if condition.get("field") == "tag" and isinstance(condition.get("value"), str)
    }


def dependents(segment_id: str, filters: Mapping[str, Any]) -> list[str]:
    """Ids of the segments (given as id → filter) whose filter refers directly to `segment_id`."""
    return sorted(
        other_id
        for other_id, other_filter in filters.items()
        if other_id != segment_id and segment_id in referenced_segment_ids(other_filter)
    )


def reads_company_fields(filter_: Any, filters: Mapping[str, Any]) -> bool:
    """Whether a user filter, or any segment it refers to at any depth, reads `company.*`."""
    seen: set[str] = set()
    pending = [filter_]
    while pending:
        current = pending.pop()
        for condition in _conditions(current):
            field = condition.get("field")
            if isinstance(field, str) and field.startswith("company."):
                return True
        for ref in referenced_segment_ids(current) - seen:
            seen.add(ref)
            if ref in filters:
                pending.append(filters[ref])
    return False
