"""A workspace's segments, compiled once and evaluated for any number of records."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from itertools import compress
from typing import Any

from segmentation.engine.calendar import Calendar
from segmentation.engine.compiler import Compiler, Record
from segmentation.engine.fields import TARGETS
from segmentation.engine.model import Condition, Filter, conditions, segment_references
from segmentation.engine.parse import Attributes, FilterErrors, parse_filter
from segmentation.engine.segments import SegmentDef, dependency_order, find_cycle, with_predefined
from segmentation.engine.timing import is_time_relative, next_change
from segmentation.engine.validation import direct_reference_problems
from segmentation.errors import Invalid

Predicate = Callable[[Record, float], bool]
_PREDICATE_CACHE_SIZE = 256
_MEMBERSHIP_CACHE_SIZE = 4096


class Workspace:
    """Segments of both targets, compiled into one function per target.

    The predefined segments are always included (a given segment with the same id replaces one).
    `attributes` (custom attribute types per target) is optional: stored filters were validated
    against it when saved, so without it a custom attribute's type is read off its op and value.
    Raises errors.Invalid if a definition is invalid, refers to a missing segment, or cycles.
    """

    def __init__(
        self, segments: Iterable[SegmentDef], *, timezone: str = "UTC", attributes: Attributes | None = None
    ):
        self.calendar = Calendar(timezone)
        self.attributes = attributes
        self.definitions = with_predefined(segments)
        self._trees = {
            sid: self._parse(d.filter, d.target, f"segments[{sid}].filter")
            for sid, d in self.definitions.items()
        }
        self._edges = {
            sid: [str(c.value) for c in segment_references(tree)] for sid, tree in self._trees.items()
        }
        self._check_graph()
        self._ids = {
            target: tuple(sid for sid, d in self.definitions.items() if d.target == target)
            for target in TARGETS
        }
        self._programs: dict[str, Callable[[Record, float], frozenset[str]]] = {}
        self.sources: dict[str, str] = {}  # generated code per target, for inspection
        for target in TARGETS:
            self._programs[target], self.sources[target] = self._compile_memberships(target)
        self._time_conditions = {target: self._time_relative(self._ids[target]) for target in TARGETS}
        self.uses_company_fields = any(
            c.field.via_company for sid in self._ids["users"] for c in conditions(self._trees[sid])
        )
        self._predicates: dict[tuple[str, str], Predicate] = {}

    # -- queries ------------------------------------------------------------------------------

    def segment_ids(self, target: str = "users") -> tuple[str, ...]:
        return self._ids[target]

    def segments_of(self, record: Record, now: float, target: str = "users") -> frozenset[str]:
        """The ids of the segments of `target` the record is in at `now`."""
        return self._programs[target](record, now)

    def predicate(self, filter: Mapping[str, Any] | Filter, target: str = "users") -> Predicate:
        """`(record, now) -> bool` for a search or audience filter; references resolved by meaning."""
        key = None
        if isinstance(filter, Mapping):
            key = (target, json.dumps(filter, sort_keys=True, default=str))
            cached = self._predicates.get(key)
            if cached is not None:
                return cached
            tree = self._parse(filter, target, "filter")
        else:
            tree = filter
        problems = direct_reference_problems(tree, target=target, known=self.definitions, segment_id=None)
        if problems:
            raise Invalid(problems[0]["message"], problems, code="invalid_filter")
        wanted = [str(c.value) for c in segment_references(tree)]
        program, _ = self._compiler(wanted, tree).build_predicate(tree)
        if key is not None:
            if len(self._predicates) >= _PREDICATE_CACHE_SIZE:
                self._predicates.clear()
            self._predicates[key] = program
        return program

    def next_change(self, record: Record, now: float, target: str = "users") -> float | None:
        """The earliest instant after `now` at which the record's segments may change by time alone."""
        return next_change(self._time_conditions[target], record, float(now), self.calendar)

    # -- building -----------------------------------------------------------------------------

    def _parse(self, raw: Any, target: str, path: str) -> Filter:
        try:
            return parse_filter(raw, target=target, attributes=self.attributes, path=path)
        except FilterErrors as problems:
            raise Invalid(
                f"invalid filter at {problems.details[0]['path']}: {problems}",
                problems.details,
                code="invalid_filter",
            ) from None

    def _check_graph(self) -> None:
        for sid, tree in self._trees.items():
            target = self.definitions[sid].target
            problems = direct_reference_problems(tree, target=target, known=self.definitions, segment_id=None)
            if problems:
                raise Invalid(f"segment {sid!r}: {problems[0]['message']}", problems, code="invalid_filter")
        cycle = find_cycle(self._edges, self._edges)
        if cycle is not None:
            chain = " -> ".join(repr(sid) for sid in cycle)
            raise Invalid(
                f"segment references form a cycle ({chain})",
                [{"path": "segments", "message": chain}],
                code="invalid_filter",
            )

    def _compiler(self, ids: Iterable[str], extra: Filter | None = None) -> Compiler:
        """A compiler with `ids` and everything they refer to added, in dependency order."""
        order = dependency_order(self._edges, ids)
        trees = [self._trees[sid] for sid in order] + ([extra] if extra is not None else [])
        compiler = Compiler(self.calendar, trees)
        for sid in order:
            compiler.add_segment(sid, self._trees[sid])
        return compiler

    def _compile_memberships(self, target: str) -> tuple[Callable[[Record, float], frozenset[str]], str]:
        ids = self._ids[target]

        def remember(
            results: tuple[bool, ...], known: dict[tuple[bool, ...], frozenset[str]]
        ) -> frozenset[str]:
            segments = frozenset(compress(ids, results))
            if len(known) < _MEMBERSHIP_CACHE_SIZE:
                known[results] = segments
            return segments

        return self._compiler(ids).build_memberships(ids, remember)

    def _time_relative(self, ids: Iterable[str]) -> list[Condition]:
        unique: dict[Condition, None] = {}
        for sid in ids:
            for condition in conditions(self._trees[sid]):
                if is_time_relative(condition):
                    unique.setdefault(condition)
        return list(unique)
