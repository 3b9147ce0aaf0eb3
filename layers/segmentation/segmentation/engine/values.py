"""How stored values are read as the filter's types. Unknown = missing, None, or of another type.

Numbers and timestamps read as float, with NaN for unknown: every comparison with NaN is false
and `!=` / `not in` are true, which is exactly the filter language's rule for unknown values.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence, Set
from decimal import Decimal
from typing import Any

from segmentation.engine.timestamps import parse_timestamp

NAN = math.nan
NUMERIC_CLASSES = frozenset({int, float, Decimal})
_EMPTY: dict[str, Any] = {}
# A user with no companies counts as one company whose fields are all unknown.
NO_COMPANY: tuple[Mapping[str, Any], ...] = (_EMPTY,)


def timestamp_from_other(value: object) -> float:
    """A timestamp that is not stored as a number: an ISO string, else unknown (NaN)."""
    if value is None or value.__class__ is not str:
        return NAN
    try:
        return parse_timestamp(value)
    except ValueError:
        return NAN


def as_number(value: object) -> float:
    return float(value) if value.__class__ in NUMERIC_CLASSES else NAN  # type: ignore[arg-type]


def as_timestamp(value: object) -> float:
    return float(value) if value.__class__ in NUMERIC_CLASSES else timestamp_from_other(value)  # type: ignore[arg-type]


def companies_of(record: Mapping[str, Any]) -> Sequence[Mapping[str, Any]]:
    """The company records a user record carries, or the one all-unknown company."""
    listed = record.get("companies")
    if listed.__class__ is not list or not listed:
        return NO_COMPANY
    for company in listed:
        if company.__class__ is not dict:
            return tuple(company for company in listed if company.__class__ is dict) or NO_COMPANY
    return listed


NO_TAGS: frozenset[str] = frozenset()


def tags_of(value: object) -> Set[Any]:
    """A user's stored `tag_ids` as a set to test membership in: the string set DynamoDB returns
    (boto3 gives a `set`), a list (tests, JSON); anything else is no tags."""
    if value.__class__ is set or value.__class__ is frozenset:
        return value
    if isinstance(value, list | tuple | set | frozenset):
        return frozenset(item for item in value if isinstance(item, str))
    return NO_TAGS


def custom_attributes_of(record: Mapping[str, Any]) -> Mapping[str, Any]:
    attributes = record.get("custom_attributes")
    return attributes if isinstance(attributes, dict) else _EMPTY
