"""The CountCache table: recent answers of POST /v1/users/count and /v1/companies/count.

Items (key `cache_key`, a digest of what the answer depends on, made by segments.count):
`count`, `exact`, `margin`, `as_of` (epoch seconds, to the millisecond) and `expires_at` (epoch
seconds, the table's TTL attribute). DynamoDB deletes expired items lazily (up to days late),
so a reader judges an item's age by `as_of`, never by its presence.
"""

from __future__ import annotations

import contextlib
import math
from decimal import Decimal
from typing import Any

from segmentation import errors
from segmentation.settings import get_settings
from segmentation.storage import dynamo


def _table_name() -> str:
    return get_settings().count_cache_table


def get(cache_key: str) -> dict[str, Any] | None:
    """The cached answer, whatever its age (one eventually consistent GetItem)."""
    item: dict[str, Any] | None = dynamo.call(
        "get_item", TableName=_table_name(), Key={"cache_key": cache_key}
    ).get("Item")
    return item


def put(cache_key: str, *, count: int, exact: bool, margin: int, as_of: Decimal, keep_seconds: int) -> None:
    """Keep an answer unless a fresher one (taken within `keep_seconds` of `as_of`) is already
    there: a fresh answer is never replaced, so everyone reads the same one until it expires.
    Losing that race, or a throttled write, only costs a later recount."""
    with contextlib.suppress(dynamo.ConditionFailed, errors.Retryable):
        dynamo.call(
            "put_item",
            TableName=_table_name(),
            Item={
                "cache_key": cache_key,
                "count": count,
                "exact": exact,
                "margin": margin,
                "as_of": as_of,
                "expires_at": math.ceil(as_of) + keep_seconds,
            },
            ConditionExpression="attribute_not_exists(cache_key) OR as_of <= :stale",
            ExpressionAttributeValues={":stale": as_of - keep_seconds},
        )
