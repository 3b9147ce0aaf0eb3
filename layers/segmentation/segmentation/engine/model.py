"""A parsed, checked filter: the tree the compiler, the timing rules and validation share."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import date


@dataclass(frozen=True, slots=True)
class FieldRef:
    """Where a condition reads its value and as which type.

    kind: "standard" (a top-level field), "custom" (`custom_attributes.<name>`), "event"
    (`event.<name>.<stat>`), "segment", or "tag" (the user's `tag_ids`).
    via_company: the field is read from each of a user's companies (`company.<field>`).
    type: string, number, boolean, timestamp, segment, tag, or "any" (presence only, type unknown).
    stat, window: for an event, which statistic (count, first_at, last_at) and, for a count, the
    condition's `within_days` (None: all time).
    """

    kind: str
    name: str
    type: str
    via_company: bool = False
    stat: str = ""
    window: int | None = None


@dataclass(frozen=True, slots=True)
class DateValue:
    """The D of before/after/on: a calendar date (start of that day in the workspace zone) or an instant."""

    day: date | None = None
    epoch: float | None = None


@dataclass(frozen=True, slots=True)
class Condition:
    """One test. `value` is normalized: strings case-folded, numbers float, lists frozensets,
    days as float, dates as DateValue, a segment or tag id as given, None where the op takes none."""

    field: FieldRef
    op: str
    value: object = None
    path: str = dataclasses.field(default="filter", compare=False)


@dataclass(frozen=True, slots=True)
class And:
    items: tuple[Filter, ...]


@dataclass(frozen=True, slots=True)
class Or:
    items: tuple[Filter, ...]


@dataclass(frozen=True, slots=True)
class Not:
    item: Filter


Filter = And | Or | Not | Condition


def conditions(node: Filter) -> list[Condition]:
    """Every condition in a filter, in order."""
    found: list[Condition] = []
    stack: list[Filter] = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, Condition):
            found.append(current)
        elif isinstance(current, Not):
            stack.append(current.item)
        else:
            stack.extend(reversed(current.items))
    return found


def segment_references(node: Filter) -> list[Condition]:
    """The conditions that refer to another segment."""
    return [c for c in conditions(node) if c.field.kind == "segment"]


def tag_references(node: Filter) -> list[Condition]:
    """The conditions that test a tag."""
    return [c for c in conditions(node) if c.field.kind == "tag"]
