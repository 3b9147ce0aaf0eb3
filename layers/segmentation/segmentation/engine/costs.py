"""Which test to run first: a rough cost of each filter node, so that `and`/`or` try cheap items
first and skip dear ones more often (`browser ne chrome or score not_exists`: the presence test
costs one read, the string test a read and a case fold).

Items may run in any order: they are pure, and a NaN Decimal, which makes ordering raise, gives
the same answers whichever item meets it first (the record is evaluated again with its NaNs
unknown, engine/compiler.py). The figures are ns per test on this project's bench machine
(CPython 3.12, docs/performance.md); only their order matters.
"""

from __future__ import annotations

from collections.abc import Callable

from segmentation.engine.model import And, Condition, FieldRef, Filter, Not, Or

READ = 20  # a dict get of a value read in place (a value loaded at the top is free here)
FOLD = 45  # str.casefold of a value read in place
DECIMAL = 30  # one Decimal comparison
RANKED = 5  # an int comparison of a ranked field
EQUALITY = 8  # ==, in, is on a local
SEARCH = 40  # contains, starts_with, ends_with
AMONG = 60  # a number among several (a bisect)
COMPANY = 60  # a company.* test in place
EVENT = 400  # an event statistic, counted from the user's summary
SEGMENT = 1  # another segment's answer, already computed

_SEARCHES = frozenset({"contains", "not_contains", "starts_with", "ends_with"})
_RANGES = frozenset({"eq", "ne", "less_than_days_ago", "less_than_days_from_now", "exactly_days_ago", "on"})


def cost(node: Filter, in_place: Callable[[FieldRef], bool], ranked: Callable[[FieldRef], bool]) -> int:
    """The cost of evaluating `node` to the end; `in_place(field)`: read where it is tested,
    `ranked(field)`: compared through its rank (engine/bounds.py)."""
    if isinstance(node, And | Or):
        return sum(cost(item, in_place, ranked) for item in node.items)
    if isinstance(node, Not):
        return cost(node.item, in_place, ranked)
    return _condition_cost(node, in_place, ranked)


def _condition_cost(
    condition: Condition, in_place: Callable[[FieldRef], bool], ranked: Callable[[FieldRef], bool]
) -> int:
    field, op = condition.field, condition.op
    if field.kind == "segment":
        return SEGMENT
    if field.via_company:
        return COMPANY
    if field.kind == "event":
        return EVENT
    read = READ if in_place(field) else 0
    if op in ("exists", "not_exists") or field.type in ("boolean", "tag"):
        return read + EQUALITY
    if field.type == "string":
        return read + (FOLD if read else 0) + (SEARCH if op in _SEARCHES else EQUALITY)
    if op in ("in", "not_in"):  # numbers
        return read + AMONG
    if ranked(field):
        return RANKED
    return read + DECIMAL * (2 if op in _RANGES else 1)
