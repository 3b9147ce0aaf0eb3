"""Decimal "cuts" that answer float comparisons without converting stored Decimals to float.

Records hold numbers and timestamps as `Decimal` (what DynamoDB returns). The filter language
compares them as floats: `float(x) < k` (the reference interpreter's rule). Converting a Decimal
to float costs ~10x a Decimal comparison, and comparing a Decimal with a float costs even more,
so the engine compares Decimals with Decimals instead:

    float(x) < k   <=>  x < cut_below(k)        float(x) >= k  <=>  x >= cut_below(k)
    float(x) <= k  <=>  x < cut_above(k)        float(x) > k   <=>  x >= cut_above(k)

float() rounds to nearest, ties to even, so `float(x) < k` holds exactly when x lies below the
midpoint between k and the float just under it (or on it, when that tie rounds down). The cut is
that midpoint, nudged up when the tie rounds down by less than the spacing of 38-digit numbers
and less than the midpoint's last digit. So the equivalences are exact for every float, every
Decimal of at most 38 significant digits (everything DynamoDB can store) and the midpoint itself;
only a Decimal with more digits than both, within the nudge above a midpoint, could differ.
"""

from __future__ import annotations

import math
import sys
from bisect import bisect_right
from collections.abc import Iterable
from decimal import Context, Decimal, Inexact, InvalidOperation, Overflow, Rounded
from typing import Any

from segmentation.engine.timestamps import parse_timestamp

DYNAMODB_DIGITS = 38
_MAX = sys.float_info.max
_BEYOND_MAX = Decimal(_MAX) + Decimal(math.ulp(_MAX))  # where the float after MAX would be
# Wide enough to add and halve any two floats exactly; a lost digit would be a bug, so it traps.
_EXACT = Context(prec=2000, Emin=-9999, Emax=9999, traps=[Inexact, Rounded, Overflow, InvalidOperation])
_NEG_INF = Decimal("-Infinity")
_HALF = Decimal("0.5")


def cut_below(k: float) -> Decimal:
    """The Decimal c with `float(x) < k  <=>  x < c` (see the module doc)."""
    if math.isnan(k):
        raise ValueError("no cut for NaN")
    if k == -math.inf:
        return _NEG_INF  # nothing is below -inf
    under = math.nextafter(k, -math.inf)
    low = Decimal(under) if under != -math.inf else -_BEYOND_MAX
    high = Decimal(k) if k != math.inf else _BEYOND_MAX
    midpoint = _EXACT.multiply(_EXACT.add(low, high), _HALF)
    if float(midpoint) < k:
        # The midpoint itself rounds down (is below k): move the cut just past it, by less than
        # the gap to the next number of 38 digits and less than the midpoint's last digit.
        exponent = int(midpoint.as_tuple().exponent)
        nudge = Decimal((0, (1,), min(midpoint.adjusted() - DYNAMODB_DIGITS, exponent - 1)))
        return _EXACT.add(midpoint, nudge)
    return midpoint


class _AboveEverything:
    """The cut_above(inf): every number is below it (no Decimal is, Infinity is not above itself)."""

    __slots__ = ()

    def __gt__(self, other: object) -> bool:
        return True

    def __ge__(self, other: object) -> bool:
        return True

    def __lt__(self, other: object) -> bool:
        return False

    def __le__(self, other: object) -> bool:
        return False

    def __repr__(self) -> str:
        return "ABOVE_EVERYTHING"


ABOVE_EVERYTHING: Any = _AboveEverything()


def cut_above(k: float) -> Decimal:
    """The Decimal c with `float(x) <= k  <=>  x < c`."""
    if k == math.inf:
        return ABOVE_EVERYTHING  # type: ignore[no-any-return,unused-ignore]
    return cut_below(math.nextafter(k, math.inf))


def cuts_below(low: float, high: float) -> tuple[Decimal, Decimal]:
    """Cuts of a half-open range: `low <= float(x) < high  <=>  a <= x < b`."""
    return cut_below(low), cut_below(high)


def equal_cuts(values: Iterable[float]) -> tuple[tuple[Decimal, ...], tuple[Decimal, ...]]:
    """For `float(x) in values`: the sorted, disjoint [cut_below(v), cut_above(v)) of each value."""
    unique = sorted({v for v in values if not math.isnan(v)})
    return tuple(cut_below(v) for v in unique), tuple(cut_above(v) for v in unique)


def is_among(x: Decimal, cuts: tuple[tuple[Decimal, ...], tuple[Decimal, ...]]) -> bool:
    """`float(x) in values` for the `equal_cuts(values)`."""
    lows, highs = cuts
    index = bisect_right(lows, x) - 1
    return index >= 0 and x < highs[index]


# -- stored values that are not Decimal ------------------------------------------------------------

_FLOATING = frozenset({int, float})


def number_of(value: object) -> Decimal | None:
    """A stored non-Decimal number as the float it reads as (held exactly as a Decimal); None
    (unknown) for NaN, bools and anything else."""
    if value.__class__ in _FLOATING:
        number = float(value)  # type: ignore[arg-type]
        return Decimal(number) if number == number else None
    return None


def timestamp_of(value: object) -> Decimal | None:
    """Like number_of, and an ISO 8601 string with an offset reads as its epoch seconds."""
    if value.__class__ is str:
        try:
            return Decimal(parse_timestamp(value))
        except ValueError:
            return None
    return number_of(value)


# -- NaN Decimals ---------------------------------------------------------------------------------


class _UnknownNumber:
    """Stands for a stored NaN Decimal: present (so `exists`), but no number, text or boolean."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "UNKNOWN_NUMBER"


UNKNOWN_NUMBER = _UnknownNumber()
# What ordering a NaN Decimal raises (and comparing a signalling NaN at all).
NAN_TROUBLE = (InvalidOperation,)


def without_nan(value: Any) -> Any:
    """A copy of a record with every NaN Decimal (in it, its maps and lists) replaced by
    UNKNOWN_NUMBER. The engine's slow path: comparing a NaN Decimal raises instead of being false."""
    cls = value.__class__
    if cls is Decimal:
        return UNKNOWN_NUMBER if value.is_nan() else value
    if cls is dict:
        return {key: without_nan(item) for key, item in value.items()}
    if cls is list:
        return [without_nan(item) for item in value]
    return value
