"""The one DynamoDB helper: single calls, transactions and batch reads, with DynamoDB's errors
turned into what the rest of the code acts on.

- A failed condition is `ConditionFailed` (with the item DynamoDB returned, when asked for).
- Throttling and other transient errors are retried by botocore (standard mode, with backoff);
  what is left is `errors.Retryable` (an HTTP 429, a retried queue message or stream record).
- A transaction returns None when it committed, or one `Reason` per action when a condition
  failed. Cancellations for transient reasons (conflicts with another transaction, throttling)
  are retried here with backoff, then `errors.Retryable`.
- A batch read returns every item asked for that exists, whatever the number of keys, or raises
  `errors.Retryable`: never a silent partial result.

Calls go through the resource's client, which takes and returns plain Python values (Decimal,
set), so table modules build keys and items only.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer
from botocore.exceptions import ClientError

from segmentation import errors
from segmentation.storage import aws

# Error codes of a whole call (API names) that mean "try again later".
TRANSIENT_ERRORS = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "InternalServerError",
        "ServiceUnavailable",
        "TransactionInProgressException",
        "TransactionConflictException",
    }
)
# Cancellation reason codes of one action of a transaction (not the API names) that mean the same.
TRANSIENT_REASONS = frozenset(
    {"TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded", "RequestLimitExceeded"}
)
CONDITION_FAILED = "ConditionalCheckFailed"
TRANSACTION_LIMIT = 100
BATCH_GET_LIMIT = 100
_ATTEMPTS = 6

_deserializer = TypeDeserializer()


class ConditionFailed(Exception):
    """A conditional write's condition did not hold. `item`: the item as it was, when the call
    asked for it (ReturnValuesOnConditionCheckFailure=ALL_OLD) and it exists."""

    def __init__(self, item: dict[str, Any] | None):
        super().__init__("the condition did not hold")
        self.item = item


class GuardFailed(Exception):
    """A transaction's guard (a check on another item that its writes depend on, such as the
    version of the definitions they were computed from) did not hold: nothing was written."""


@dataclass(frozen=True)
class Reason:
    """Why one action of a cancelled transaction did not commit."""

    code: str  # "None" (it was fine), "ConditionalCheckFailed", ...
    item: dict[str, Any] | None = None  # the old item, when the action asked for it

    @property
    def condition_failed(self) -> bool:
        return self.code == CONDITION_FAILED


def client() -> Any:
    return aws.dynamodb().meta.client


def error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def backoff(attempt: int) -> None:
    time.sleep(min(0.02 * 2**attempt, 1.0))


def call(operation: str, **arguments: Any) -> dict[str, Any]:
    """One DynamoDB call (`get_item`, `update_item`, `query`...) with errors classified."""
    try:
        response: dict[str, Any] = getattr(client(), operation)(**arguments)
    except ClientError as error:
        raise _classified(error) from error
    return response


def _classified(error: ClientError) -> Exception:
    code = error_code(error)
    if code == "ConditionalCheckFailedException":
        item: Any = error.response.get("Item")
        return ConditionFailed(_plain(item) if item else None)
    if code in TRANSIENT_ERRORS:
        return errors.Retryable(f"DynamoDB: {code}")
    return error


def _plain(item: Mapping[str, Any]) -> dict[str, Any]:
    """An item in DynamoDB's typed JSON (error responses carry it so) as plain values."""
    return {key: _deserializer.deserialize(value) for key, value in item.items()}


def number(value: float | int) -> Decimal:
    """A float or int as a Decimal DynamoDB takes (floats to the microsecond)."""
    return Decimal(f"{value:.6f}") if isinstance(value, float) else Decimal(value)


def transact(actions: Sequence[Mapping[str, Any]], *, attempts: int = _ATTEMPTS) -> list[Reason] | None:
    """TransactWriteItems (at most 100 actions). None when it committed; the reasons, one per
    action, when a condition failed. Transient cancellations are tried `attempts` times in all,
    with backoff between them, then errors.Retryable."""
    if len(actions) > TRANSACTION_LIMIT:
        raise ValueError(f"a transaction holds at most {TRANSACTION_LIMIT} actions, not {len(actions)}")
    for attempt in range(attempts):
        if attempt:
            backoff(attempt - 1)
        try:
            client().transact_write_items(TransactItems=list(actions))
            return None
        except ClientError as error:
            code = error_code(error)
            if code != "TransactionCanceledException":
                failure = _classified(error)
                if not isinstance(failure, errors.Retryable):
                    raise failure from error
                continue
            reasons = [
                Reason(str(r.get("Code") or "None"), _plain(r["Item"]) if r.get("Item") else None)
                for r in error.response.get("CancellationReasons") or []
            ]
            if any(reason.condition_failed for reason in reasons):
                return reasons
            if reasons and not any(reason.code in TRANSIENT_REASONS for reason in reasons):
                raise
    raise errors.Retryable("DynamoDB kept cancelling a transaction (conflicts or throttling)")


def batch_get(
    table: str, keys: Iterable[Mapping[str, Any]], *, consistent: bool = False, projection: str | None = None
) -> list[dict[str, Any]]:
    """Every item of `keys` that exists (any number of keys; duplicates read once)."""
    unique = list({tuple(sorted(key.items())): dict(key) for key in keys}.values())
    items: list[dict[str, Any]] = []
    for start in range(0, len(unique), BATCH_GET_LIMIT):
        request: dict[str, Any] = {
            "Keys": unique[start : start + BATCH_GET_LIMIT],
            "ConsistentRead": consistent,
        }
        if projection:
            request["ProjectionExpression"] = projection
        pending: dict[str, Any] = {table: request}
        for attempt in range(_ATTEMPTS * 2):
            answer = call("batch_get_item", RequestItems=pending)
            items.extend(answer.get("Responses", {}).get(table, []))
            pending = answer.get("UnprocessedKeys") or {}
            if not pending:
                break
            backoff(attempt)
        else:
            raise errors.Retryable(f"BatchGetItem on {table} kept returning unprocessed keys")
    return items


def query_all(**arguments: Any) -> list[dict[str, Any]]:
    """Every item of a Query, page after page."""
    items: list[dict[str, Any]] = []
    while True:
        page = call("query", **arguments)
        items.extend(page.get("Items", []))
        if "LastEvaluatedKey" not in page:
            return items
        arguments["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def scan_all(**arguments: Any) -> list[dict[str, Any]]:
    """Every item of a Scan, page after page (small tables only)."""
    items: list[dict[str, Any]] = []
    while True:
        page = call("scan", **arguments)
        items.extend(page.get("Items", []))
        if "LastEvaluatedKey" not in page:
            return items
        arguments["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def commit_groups(
    groups: list[list[dict[str, Any]]],
    tail: Mapping[str, Any] | Callable[[], Mapping[str, Any]] | None = None,
    guard: Mapping[str, Any] | None = None,
    *,
    resolve: Callable[[list[dict[str, Any]], list[Reason]], list[dict[str, Any]] | None] | None = None,
) -> tuple[bool, list[list[dict[str, Any]]]]:
    """Commit groups of actions that must go together (a membership and its count), plus `tail`
    (an action on the member's own item, or a function making it afresh for each attempt) and
    `guard` (a check the whole write depends on), in one transaction.

    A group with a failed condition is already in the state it asks for (a replay, a concurrent
    writer) or must not happen: it is dropped and the rest tried again, unless `resolve` (given
    the group and its actions' reasons) returns a group to try instead. Returns (False, ...) when
    `tail`'s condition failed; raises GuardFailed when `guard`'s did; else (True, the groups that
    committed).
    """
    pending = groups
    for _ in range(TRANSACTION_LIMIT):
        if not pending and tail is None:
            return True, []
        ends = [dict(action) for action in (tail() if callable(tail) else tail, guard) if action is not None]
        reasons = transact([action for group in pending for action in group] + ends)
        if reasons is None:
            return True, pending
        if guard is not None and reasons[-1].condition_failed:
            raise GuardFailed()
        if tail is not None and reasons[len(reasons) - len(ends)].condition_failed:
            return False, []
        kept: list[list[dict[str, Any]]] = []
        position = 0
        for group in pending:
            own = reasons[position : position + len(group)]
            if not any(reason.condition_failed for reason in own):
                kept.append(group)
            elif resolve is not None and (instead := resolve(group, own)) is not None:
                kept.append(instead)
            position += len(group)
        pending = kept
    raise errors.Retryable("a transaction kept failing its conditions")


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
