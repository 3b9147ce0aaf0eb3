"""Ordering conditions as one of four shapes over one or two Decimal cuts, and sorted cuts.

Every ordering test of the filter language (number eq/ne/gt/gte/lt/lte, every timestamp op but
presence) is one shape over cuts (engine/exact.py), x being the stored value (None: unknown):

    range     a <= x < b            outside   x unknown, or not a <= x < b
    at_least  x >= a                below     x < a

A cut is a constant made at compile time, or depends on `now` (made once per `now`).

Why shapes: conditions on one field then differ only by their cuts, so all of them can be answered
from one lookup. `rank` sorts the field's distinct cuts; p = bisect_right(sorted, x), the number of
cuts at or below x, is found once per record, and then `c <= x` is `p > i` and `x < c` is `p <= i`
(i being c's index among the sorted cuts): an int comparison instead of a Decimal one each.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from typing import Any, NamedTuple, cast

from segmentation.engine.calendar import Calendar
from segmentation.engine.exact import cut_above, cut_below
from segmentation.engine.fields import DAYS_OPS, SECONDS_PER_DAY
from segmentation.engine.model import Condition, DateValue


class Cut(NamedTuple):
    """What a cut is made from. kind "const": `value` is the cut. kind "now": `value` is
    (side, sign, seconds), the cut_<side> of now, now - seconds or now + seconds. kind "day":
    `value` is (days, end), the start (or end) of the calendar day `days` days before today."""

    kind: str
    value: Any


# Each shape as a test of the value x, and of its rank p among the field's sorted cuts (p is -1
# when x is unknown; i and j are the indexes of a and b among the sorted cuts).
SHAPES: dict[str, tuple[str, str]] = {
    "range": ("({x} is not None and {a} <= {x} < {b})", "({i} < {p} <= {j})"),
    "outside": ("({x} is None or not {a} <= {x} < {b})", "(not {i} < {p} <= {j})"),
    "at_least": ("({x} is not None and {x} >= {a})", "({p} > {i})"),
    "below": ("({x} is not None and {x} < {a})", "(-1 < {p} <= {i})"),
}

# float(x) = v is cut_below(v) <= x < cut_above(v); float(x) > v is x >= cut_above(v); and so on.
_NUMBER_SHAPES = {
    "eq": ("range", ("below", "above")),
    "ne": ("outside", ("below", "above")),
    "gt": ("at_least", ("above",)),
    "gte": ("at_least", ("below",)),
    "lt": ("below", ("below",)),
    "lte": ("below", ("above",)),
}


def bounds(condition: Condition, calendar: Calendar) -> tuple[str, tuple[Cut, ...]] | None:
    """(shape, cuts) of an ordering condition on a number or timestamp; None for any other."""
    field, op, value = condition.field, condition.op, condition.value
    if field.type == "number" and op in _NUMBER_SHAPES:
        shape, sides = _NUMBER_SHAPES[op]
        number = cast(float, value)  # parsed numbers are floats
        return shape, tuple(
            _const(cut_below(number) if side == "below" else cut_above(number)) for side in sides
        )
    if field.type != "timestamp":
        return None
    if op in DAYS_OPS:
        days = cast(float, value)  # days are floats
        seconds = days * SECONDS_PER_DAY
        if op == "less_than_days_ago":  # now - seconds < t <= now
            return "range", (_now("above", "-", seconds), _now("above"))
        if op == "more_than_days_ago":  # t < now - seconds
            return "below", (_now("below", "-", seconds),)
        if op == "less_than_days_from_now":  # now <= t < now + seconds
            return "range", (_now("below"), _now("below", "+", seconds))
        if op == "more_than_days_from_now":  # t > now + seconds
            return "at_least", (_now("above", "+", seconds),)
        return "range", (Cut("day", (days, False)), Cut("day", (days, True)))  # exactly_days_ago
    if op == "on":  # the day of D: [its start, its end)
        low, high = calendar.bounds_of(cast(DateValue, value))
        return "range", (_const(cut_below(low)), _const(cut_below(high)))
    if op == "before":  # t < D
        return "below", (_const(cut_below(calendar.instant(cast(DateValue, value)))),)
    if op == "after":  # t > D
        return "at_least", (_const(cut_above(calendar.instant(cast(DateValue, value)))),)
    return None


def _const(cut: object) -> Cut:
    return Cut("const", cut)


def _now(side: str, sign: str = "", seconds: float = 0.0) -> Cut:
    return Cut("now", (side, sign, seconds if sign else 0.0))


def rank(cuts: Sequence[Any]) -> tuple[Any, ...]:
    """(the distinct cuts in order, as a tuple), then the index of each given cut among them.

    Equal cuts share an index, so a value's rank answers both. The cuts are Decimals, or
    ABOVE_EVERYTHING, which orders above every Decimal."""
    ordered: list[Any] = []
    for cut in sorted(cuts):
        if not ordered or ordered[-1] < cut:
            ordered.append(cut)
    return (tuple(ordered), *(bisect_left(ordered, cut) for cut in cuts))
