"""A workspace's segments, compiled once and evaluated for any number of records."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from segmentation.engine.calendar import Calendar
from segmentation.engine.compiler import Compiler, MembershipProgram, Record
from segmentation.engine.model import Condition, Filter, conditions, segment_references
from segmentation.engine.parse import Attributes, FilterErrors, parse_filter
from segmentation.engine.segments import (
    SegmentDef,
    dependency_order,
    find_cycle,
    reads_company_fields,
    with_predefined,
)
from segmentation.engine.timing import is_time_relative, next_change
from segmentation.engine.validation import direct_reference_problems
from segmentation.errors import Invalid
from segmentation.vocabulary import TARGETS

Predicate = Callable[[Record, float], bool]
_PREDICATE_CACHE_SIZE = 256


class Workspace:
    """Segments of both targets, compiled into one function per target.

    The predefined segments are always included (a given segment with the same id replaces one).
    `attributes` (custom attribute types per target) is optional: stored filters were validated
    against it when saved, so without it a custom attribute's type is read off its op and value.
    A definition that cannot be evaluated is left out, with its reason in `broken`: one bad
    definition never stops the others.
    """

    def __init__(
        self,
        segments: Iterable[SegmentDef],
        *,
        timezone: str = "UTC",
        attributes: Attributes | None = None,
        version: int = 0,
    ):
        self.calendar = Calendar(timezone)
        self.attributes = attributes
        self.version = version  # of the stored definitions it was compiled from (0: not stored)
        self.definitions = with_predefined(segments)
        # A definition that cannot be evaluated (it does not parse, refers to a missing or broken
        # segment, or is on a cycle) is left out with its reason; every other one works.
        self.broken: dict[str, str] = {}
        self._trees: dict[str, Filter] = {}
        for sid, definition in self.definitions.items():
            try:
                self._trees[sid] = self._parse(
                    definition.filter, definition.target, f"segments[{sid}].filter"
                )
            except Invalid as error:
                self.broken[sid] = error.message
        self._leave_out_broken_references()
        self._edges = {
            sid: [str(c.value) for c in segment_references(tree)] for sid, tree in self._trees.items()
        }
        self._ids = {
            target: tuple(
                sid for sid, d in self.definitions.items() if d.target == target and sid not in self.broken
            )
            for target in TARGETS
        }
        self._programs: dict[str, MembershipProgram] = {}
        self.sources: dict[str, str] = {}  # generated code per target, for inspection
        for target in TARGETS:
            self._programs[target], self.sources[target] = self._compile_memberships(target)
        # `segments_of(record, now, target="users")`: the ids of the segments of `target` the
        # record is in at `now`. It is the users' generated function itself, which hands other
        # targets on: one call per record, where a method calling it would cost a second one.
        self.segments_of: MembershipProgram = self._programs["users"]
        self._time_conditions = {target: self._time_relative(self._ids[target]) for target in TARGETS}
        # The company fields user segments read through `company.<field>`.
        self.company_fields_read = frozenset(
            c.field.name
            for sid in self._ids["users"]
            for c in conditions(self._trees[sid])
            if c.field.via_company
        )
        self.uses_company_fields = bool(self.company_fields_read)
        self._predicates: dict[tuple[str, str], Predicate] = {}

    # -- queries ------------------------------------------------------------------------------

    def segment_ids(self, target: str = "users") -> tuple[str, ...]:
        """The segments of `target` that can be evaluated, predefined first."""
        return self._ids[target]

    def broken_ids(self, target: str = "users") -> frozenset[str]:
        """The segments of `target` that cannot be evaluated (see `broken` for why)."""
        return frozenset(sid for sid in self.broken if self.definitions[sid].target == target)

    def reads_company_fields(self, filter: Mapping[str, Any]) -> bool:
        """Whether a user filter, or a segment it refers to at any depth, reads `company.*`."""
        return reads_company_fields(filter, {sid: d.filter for sid, d in self.definitions.items()})

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
        problems += [
            {
                "path": f"{c.path}.value",
                "message": f"segment {c.value!r} cannot be evaluated: {self.broken[str(c.value)]}",
            }
            for c in segment_references(tree)
            if str(c.value) in self.broken
        ]
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

    def _leave_out_broken_references(self) -> None:
        """Move to `broken` every definition that refers to a missing, broken or other-target
        segment, or lies on a cycle, until what is left is a sound graph."""
        while True:
            for sid, tree in list(self._trees.items()):
                target = self.definitions[sid].target
                healthy = {other: d for other, d in self.definitions.items() if other not in self.broken}
                problems = direct_reference_problems(tree, target=target, known=healthy, segment_id=sid)
                if problems:
                    self.broken[sid] = problems[0]["message"]
                    del self._trees[sid]
            edges = {sid: [str(c.value) for c in segment_references(t)] for sid, t in self._trees.items()}
            cycle = find_cycle(edges, edges)
            if cycle is None:
                return
            chain = " -> ".join(repr(sid) for sid in cycle)
            for sid in cycle[:-1]:
                self.broken[sid] = f"segment references form a cycle ({chain})"
                self._trees.pop(sid, None)

    def _compiler(self, ids: Iterable[str], extra: Filter | None = None) -> Compiler:
        """A compiler with `ids` and everything they refer to added, in dependency order."""
        order = dependency_order(self._edges, ids)
        trees = [self._trees[sid] for sid in order] + ([extra] if extra is not None else [])
        compiler = Compiler(self.calendar, trees)
        for sid in order:
            compiler.add_segment(sid, self._trees[sid])
        return compiler

    def _compile_memberships(self, target: str) -> tuple[MembershipProgram, str]:
        ids = self._ids[target]
        return self._compiler(ids).build_memberships(ids, target, self._elsewhere)

    def _elsewhere(self, record: Record, now: float, target: str = "users") -> frozenset[str]:
        """A target's program, called through another's (KeyError for an unknown target)."""
        return self._programs[target](record, now, target)

    def _time_relative(self, ids: Iterable[str]) -> list[Condition]:
        unique: dict[Condition, None] = {}
        for sid in ids:
            for condition in conditions(self._trees[sid]):
                if is_time_relative(condition):
                    unique.setdefault(condition)
        return list(unique)
