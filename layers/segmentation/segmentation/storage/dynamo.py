"""Small DynamoDB helpers shared by the messaging storage modules (cursors, transactions, errors)."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer
from botocore.exceptions import ClientError

from segmentation import cursors, errors
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
    return cursors.encode(key) if key else None


def cursor_error() -> errors.DomainError:
    return cursors.InvalidCursor()


def decode_cursor(cursor: str | None, *, fields: tuple[str, ...]) -> dict[str, Any] | None:
    """A cursor given back by a client: a key of exactly `fields`, else a 400, never a 500."""
    if not cursor:
        return None
    key = cursors.decode(cursor)
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


def chunk_pairs(pairs: list[list[Any]], per_chunk: int) -> list[list[list[Any]]]:
    """Split groups of operations that must stay together (a membership op and its count op)."""
    chunks: list[list[list[Any]]] = []
    current: list[list[Any]] = []
    size = 0
    for pair in pairs:
        if current and size + len(pair) > per_chunk:
            chunks.append(current)
            current, size = [], 0
        current.append(pair)
        size += len(pair)
    if current or not chunks:
        chunks.append(current)
    return chunks
