"""Small DynamoDB helpers shared by the messaging storage modules (cursors, transactions, errors)."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer
from botocore.exceptions import ClientError

from segmentation import errors
from segmentation.storage import aws

THROTTLING_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "TransactionConflictException",
        "TransactionInProgressException",
        "InternalServerError",
    }
)

_deserializer = TypeDeserializer()


def from_wire(values: Mapping[str, Any]) -> dict[str, Any]:
    """An item in DynamoDB's typed JSON (as error responses carry it) to plain values."""
    return {k: _deserializer.deserialize(v) for k, v in values.items()}


def number(value: float | int) -> Decimal:
    return Decimal(f"{value:.6f}") if isinstance(value, float) else Decimal(value)


def encode_cursor(key: dict[str, Any] | None) -> str | None:
    if not key:
        return None
    plain = {k: (str(v) if isinstance(v, Decimal) else v) for k, v in key.items()}
    return base64.urlsafe_b64encode(json.dumps(plain, sort_keys=True).encode()).decode().rstrip("=")


def cursor_error() -> errors.Invalid:
    return errors.Invalid("The cursor is not one this API returned.", [{"path": "cursor"}])


def decode_cursor(cursor: str | None, *, fields: tuple[str, ...]) -> dict[str, Any] | None:
    """A cursor given back by a client; anything we did not make is a 422, never a 500."""
    if not cursor:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        key = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, UnicodeDecodeError) as exc:
        raise cursor_error() from exc
    if (
        not isinstance(key, dict)
        or set(key) != set(fields)
        or not all(isinstance(v, str) for v in key.values())
    ):
        raise cursor_error()
    return key


def transact(actions: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
    """Run TransactWriteItems (plain values: the resource's client serializes them).

    None when it went through; else the cancellation reasons, one per action:
    {"Code": "ConditionalCheckFailed"|"None"|..., "Item": the old item or None}.
    Throttling and transaction conflicts become `errors.Retryable`."""
    try:
        aws.dynamodb().meta.client.transact_write_items(TransactItems=actions)
        return None
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code == "TransactionCanceledException":
            reasons = exc.response.get("CancellationReasons") or []
            if any(r.get("Code") in THROTTLING_CODES for r in reasons):
                raise errors.Retryable(f"DynamoDB transaction conflict: {reasons}") from exc
            if not any(r.get("Code") == "ConditionalCheckFailed" for r in reasons):
                raise
            return [
                {"Code": r.get("Code", "None"), "Item": from_wire(r["Item"]) if r.get("Item") else None}
                for r in reasons
            ]
        if code in THROTTLING_CODES:
            raise errors.Retryable(f"DynamoDB throttled: {code}") from exc
        raise


def retryable_from(exc: ClientError) -> Exception:
    code = exc.response.get("Error", {}).get("Code", "")
    return errors.Retryable(f"DynamoDB throttled: {code}") if code in THROTTLING_CODES else exc
