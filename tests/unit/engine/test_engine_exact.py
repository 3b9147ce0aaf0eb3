"""Decimal cuts give exactly the answers of float comparisons (engine/exact.py)."""

from __future__ import annotations

import math
import sys
from decimal import Decimal, localcontext

from hypothesis import given, settings
from hypothesis import strategies as st
from segmentation.engine.exact import (
    UNKNOWN_NUMBER,
    cut_above,
    cut_below,
    equal_cuts,
    is_among,
    number_of,
    timestamp_of,
    without_nan,
)

# (Not beyond 1e300: CPython's own float() is not correctly rounded right at the overflow edge.)
finite = st.floats(min_value=-1e300, max_value=1e300)
edges = st.sampled_from([0.0, -0.0, 0.1, 1 / 3, 1e9 + 0.123, 5e-324, 2.0**53, 1.0000000000000004e38])


def near(k: float) -> list[Decimal]:
    """Decimals on and around k, its neighbours and the midpoints between them (where rounding ties)."""
    out: list[Decimal] = []
    for f in (math.nextafter(k, -math.inf), k, math.nextafter(k, math.inf)):
        if math.isfinite(f):
            exact = Decimal(f)
            out += [exact, Decimal(repr(f)), exact + Decimal("1e-330"), exact - Decimal("1e-330")]
    for cut in (cut_below(k), cut_above(k)):
        if isinstance(cut, Decimal) and cut.is_finite():
            out += [cut, cut.next_minus(), cut.next_plus()]
    return out


@settings(max_examples=300, deadline=None)
@given(st.one_of(finite, edges, edges.map(lambda k: -k)))
def test_cuts_agree_with_float_comparisons(k):
    below, above = cut_below(k), cut_above(k)
    for x in near(k):
        assert (float(x) < k) == (x < below), (k, x)
        assert (float(x) <= k) == (x < above), (k, x)


def test_a_midpoint_that_rounds_down_is_below():
    k = 1.0 + sys.float_info.epsilon  # odd, so the tie between 1.0 and k rounds down to 1.0
    with localcontext(prec=100):
        midpoint = (Decimal(1) + Decimal(k)) / 2
    assert float(midpoint) < k
    assert midpoint < cut_below(k)


def test_infinities():
    assert not Decimal("-Infinity") < cut_below(-math.inf)
    assert Decimal("Infinity") < cut_above(math.inf)
    assert not Decimal("Infinity") >= cut_above(math.inf)
    assert not Decimal("Infinity") < cut_below(math.inf)


def test_is_among_reads_like_float_membership():
    cuts = equal_cuts([0.1, 2.0, 2.0, 5.0])
    assert is_among(Decimal("0.1"), cuts)
    assert is_among(Decimal("2.00"), cuts)
    assert not is_among(Decimal("3"), cuts)
    assert not is_among(Decimal("-1"), cuts)
    assert not is_among(Decimal("0.11"), cuts)


def test_other_stored_values():
    assert number_of(3) == Decimal(3)
    assert number_of(0.1) == Decimal.from_float(0.1)
    assert number_of(float("nan")) is None
    assert number_of(True) is None
    assert number_of("3") is None
    assert timestamp_of("1970-01-01T00:01:00Z") == Decimal(60)
    assert timestamp_of("yesterday") is None


def test_without_nan_marks_nans_everywhere_and_keeps_the_rest():
    record = {
        "a": Decimal("NaN"),
        "b": Decimal(1),
        "custom_attributes": {"c": Decimal("-NaN")},
        "companies": [{"d": Decimal("sNaN"), "e": "x"}],
    }
    assert without_nan(record) == {
        "a": UNKNOWN_NUMBER,
        "b": Decimal(1),
        "custom_attributes": {"c": UNKNOWN_NUMBER},
        "companies": [{"d": UNKNOWN_NUMBER, "e": "x"}],
    }
