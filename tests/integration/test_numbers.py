"""One rule for every number a request brings (API.md): what DynamoDB can hold (at most 38
significant digits, magnitude from 1e-130 to below 1e126, or 0) is kept; any other is a 422 at
its field. Never a 5xx, whatever the size, on every upsert route (under moto, whose DynamoDB
refuses what boto3 cannot serialise, as the real one does)."""

from __future__ import annotations

import json
import math
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from segmentation.values import to_number

from tests.support.apigw import Reply, call

SMALLEST = Decimal("1e-130")
TOO_LARGE = Decimal("1e126")


def storable(value: Decimal) -> bool:
    """The rule, written apart from values.to_number: digits counted on the number's text."""
    if value == 0:
        return True
    magnitude = value.copy_abs()  # abs() would round to the context's 28 digits
    if not SMALLEST <= magnitude < TOO_LARGE:
        return False
    mantissa = f"{magnitude:e}".split("e")[0].replace(".", "").strip("0")
    return len(mantissa) <= 38


def sent_value(literal: str) -> Decimal | None:
    """What a JSON parser makes of a literal: an integer exactly, anything else as a double
    (docs/api-notes.md); None when that is not a finite number."""
    if literal.lstrip("-").isdigit():
        return Decimal(literal)
    number = float(literal)
    return Decimal(repr(number)) if math.isfinite(number) else None


def expect(reply: Reply, literal: str, path: str, ok: set[int]) -> None:
    assert reply.status < 500, (literal, reply.body)
    value = sent_value(literal)
    if value is not None and storable(value):
        assert reply.status in ok, (literal, reply.body)
    else:
        assert reply.status == 422, (literal, reply.body)
        assert [detail["path"] for detail in reply.body["error"]["details"]] == [path], reply.body


def read_back(value: Any) -> Decimal:
    return Decimal(repr(value)) if isinstance(value, float) else Decimal(value)


def upsert_everywhere(keys: dict[str, str], literal: str) -> None:
    """The number as a user's custom attribute, a company's size and custom attribute, and an
    event's metadata value; what is accepted reads back as the same number."""
    user = call(
        "POST",
        "/v1/users",
        key=keys["ingest"],
        raw_body=f'{{"user_id": "u-1", "custom_attributes": {{"n": {literal}}}}}',
    )
    expect(user, literal, "custom_attributes.n", {200, 201})
    company = call(
        "POST", "/v1/companies", key=keys["ingest"], raw_body=f'{{"company_id": "c-1", "size": {literal}}}'
    )
    expect(company, literal, "size", {200, 201})
    custom = call(
        "POST",
        "/v1/companies",
        key=keys["ingest"],
        raw_body=f'{{"company_id": "c-1", "custom_attributes": {{"m": {literal}}}}}',
    )
    expect(custom, literal, "custom_attributes.m", {200, 201})
    event = call(
        "POST",
        "/v1/users/u-1/events",
        key=keys["ingest"],
        raw_body=f'{{"event_name": "counted", "metadata": {{"n": {literal}}}}}',
    )
    expect(event, literal, "metadata.n", {202})
    if user.status < 300:
        value = sent_value(literal)
        stored = call("GET", "/v1/users/u-1", key=keys["read"]).body["custom_attributes"]["n"]
        assert read_back(stored) == value
        fetched = call("GET", "/v1/companies/c-1", key=keys["read"]).body
        assert read_back(fetched["size"]) == value and read_back(fetched["custom_attributes"]["m"]) == value


def filter_with(keys: dict[str, str], literal: str, *, save: bool = False) -> None:
    """Filter values are compared, never stored as numbers (docs/api-notes.md): no size is a 5xx."""
    condition = f'{{"field": "session_count", "op": "gt", "value": {literal}}}'
    search = call("POST", "/v1/users/search", key=keys["read"], raw_body=f'{{"filter": {condition}}}')
    assert search.status in (200, 422), (literal, search.body)
    if save:
        body = f'{{"name": "more than {literal[:40]}", "filter": {condition}}}'
        segment = call("POST", "/v1/segments", key=keys["admin"], raw_body=body)
        assert segment.status in (201, 422), (literal, segment.body)
        assert (segment.status == 201) == (search.status == 200)


@pytest.fixture
def user(keys: dict[str, str]) -> dict[str, str]:
    assert call("POST", "/v1/users", key=keys["ingest"], body={"user_id": "u-1"}).status == 201
    return keys


@pytest.mark.parametrize(
    "literal",
    [
        str(10**40),  # one significant digit in 41: was a 500 while 1e40 was stored
        str(-(10**40)),
        str(10**38),
        str(12345678901234567890123456789012345678 * 10**87),  # 38 digits, just under 1e126
        "1e40",
        "1e-130",
        "9.99e125",
        "0",
        "-0.0",
        "1e-400",  # a double underflows to 0
        str(10**126),
        "1e126",
        str(123456789012345678901234567890123456789),  # 39 significant digits
        str(10**125 + 1),
        "1e-131",
        "5e-324",
        "1e400",
        "NaN",
        "-Infinity",
        "9" * 5000,
    ],
)
def test_each_size_is_kept_or_a_422_at_its_field(user: dict[str, str], literal: str) -> None:
    upsert_everywhere(user, literal)
    filter_with(user, literal, save=True)


def test_a_long_integer_is_kept_normalised_as_dynamodb_keeps_it() -> None:
    assert to_number(10**40) == Decimal("1e40")
    assert to_number(10**40).as_tuple().digits == (1,)
    assert to_number(-(10**40) * 3).as_tuple().digits == (3,)
    with pytest.raises(ValueError, match="38 significant digits"):
        to_number(10**40 + 1)


_INTEGERS = st.one_of(
    st.integers(),
    st.integers(min_value=-(10**140), max_value=10**140),
    st.builds(
        lambda mantissa, exponent: mantissa * 10**exponent,
        st.integers(min_value=-(10**40), max_value=10**40),
        st.integers(min_value=0, max_value=130),
    ),
).map(str)
_FLOATS = st.floats(allow_nan=True, allow_infinity=True).map(json.dumps)
_DECIMALS = st.one_of(
    st.decimals(allow_nan=False, allow_infinity=False),
    st.builds(
        lambda mantissa, exponent: Decimal(mantissa).scaleb(exponent),
        st.integers(min_value=-(10**45), max_value=10**45),
        st.integers(min_value=-200, max_value=200),
    ),
).map(str)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(literal=st.one_of(_INTEGERS, _FLOATS, _DECIMALS))
def test_no_number_of_any_size_is_a_5xx(user: dict[str, str], literal: str) -> None:
    upsert_everywhere(user, literal)
    filter_with(user, literal)
