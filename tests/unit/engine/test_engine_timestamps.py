"""parse_timestamp, format_timestamp and attribute_type_of (also used by ingest)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from segmentation.engine import attribute_type_of, format_timestamp, parse_timestamp


@pytest.mark.parametrize(
    ("text", "epoch"),
    [
        ("2026-11-01T09:30:00Z", 1793525400.0),
        ("2026-11-01T09:30:00+00:00", 1793525400.0),
        ("2026-11-01T11:30:00+02:00", 1793525400.0),
        ("2026-11-01T04:30:00-05:00", 1793525400.0),
        ("2026-11-01T09:30:00.250Z", 1793525400.25),
        (1793525400, 1793525400.0),
        (1793525400.5, 1793525400.5),
        (Decimal("1793525400"), 1793525400.0),
        (0, 0.0),
    ],
)
def test_parse_timestamp(text, epoch):
    assert parse_timestamp(text) == epoch


@pytest.mark.parametrize(
    "bad",
    [
        "2026-11-01T09:30:00",
        "2026-11-01",
        "yesterday",
        "",
        True,
        None,
        [],
        float("nan"),
        float("inf"),
        1e20,
        Decimal("NaN"),
        10**400,
    ],
)
def test_parse_timestamp_rejects(bad):
    with pytest.raises(ValueError):
        parse_timestamp(bad)


@pytest.mark.parametrize(
    ("epoch", "text"),
    [
        (1793525400, "2026-11-01T09:30:00Z"),
        (Decimal("1793525400"), "2026-11-01T09:30:00Z"),
        (1793525400.0, "2026-11-01T09:30:00Z"),
        (Decimal("1793525400.5"), "2026-11-01T09:30:00.500Z"),
        (1793525400.001, "2026-11-01T09:30:00.001Z"),
        (-1, "1969-12-31T23:59:59Z"),
        (-62135596800, "0001-01-01T00:00:00Z"),
    ],
)
def test_format_timestamp(epoch, text):
    assert format_timestamp(epoch) == text


def test_round_trip():
    for text in ("2026-11-01T09:30:00Z", "1999-12-31T23:59:59.999Z", "2026-03-08T07:00:00.120Z"):
        assert format_timestamp(parse_timestamp(text)) == text


@pytest.mark.parametrize(
    ("name", "value", "kind"),
    [
        ("trial_ends_at", "2026-12-15T00:00:00Z", "timestamp"),
        ("trial_ends_at", 1793525400, "timestamp"),
        ("trial_ends_at", Decimal("1793525400"), "timestamp"),
        ("plan", "2026-12-15T00:00:00Z", "string"),
        ("plan", "free trial", "string"),
        ("photos_uploaded", 82, "number"),
        ("ratio", 0.5, "number"),
        ("ratio", Decimal("0.5"), "number"),
        ("downloaded_mobile_app", False, "boolean"),
        ("plan", None, None),
    ],
)
def test_attribute_type_of(name, value, kind):
    assert attribute_type_of(name, value) == kind


@pytest.mark.parametrize("value", [[1], {"a": 1}])
def test_attribute_type_of_rejects_structures(value):
    with pytest.raises(ValueError):
        attribute_type_of("things", value)


@pytest.mark.parametrize("value", ["soon", True, [1], "2026-12-15"])
def test_a_name_ending_in_at_holds_timestamps_only(value):
    with pytest.raises(ValueError):
        attribute_type_of("trial_ends_at", value)
