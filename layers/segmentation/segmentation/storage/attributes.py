"""The DataAttributes table: each custom attribute name's type, fixed by its first value.

Items are (target, name) → type. One counter item per target (target "#count", name = the
target) caps the number of names; a new name and the counter move together in one transaction.
Types never change once written, so the ones confirmed are cached for the process.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from botocore.exceptions import ClientError

from segmentation.engine.fields import MAX_ATTRIBUTE_NAMES
from segmentation.errors import Invalid, Retryable
from segmentation.settings import get_settings
from segmentation.storage import aws, records

COUNTER_TARGET = "#count"
_TRANSACTION_LIMIT = 99  # 100 actions per transaction, one of them the counter
_known: dict[tuple[str, str], str] = {}


def clear_cache() -> None:
    _known.clear()


def _table_name() -> str:
    return get_settings().attributes_table


def all_types(target: str) -> dict[str, str]:
    """Every custom attribute of a target ("users" or "companies") → its type."""
    table = aws.table(_table_name())
    found: dict[str, str] = {}
    arguments: dict[str, Any] = {
        "KeyConditionExpression": "#t = :t",
        "ExpressionAttributeNames": {"#t": "target"},
        "ExpressionAttributeValues": {":t": target},
    }
    while True:
        response = table.query(**arguments)
        for item in response.get("Items", []):
            found[item["name"]] = item["type"]
        if "LastEvaluatedKey" not in response:
            break
        arguments["ExclusiveStartKey"] = response["LastEvaluatedKey"]
    _known.update({(target, name): kind for name, kind in found.items()})
    return found


def types_of(target: str, names: Iterable[str]) -> dict[str, str]:
    """The fixed types of these names (names not seen yet are left out)."""
    wanted = [name for name in dict.fromkeys(names)]
    result = {name: _known[(target, name)] for name in wanted if (target, name) in _known}
    missing = [name for name in wanted if name not in result]
    for start in range(0, len(missing), 100):
        chunk = missing[start : start + 100]
        request: dict[str, Any] = {
            _table_name(): {
                "Keys": [{"target": target, "name": name} for name in chunk],
                "ConsistentRead": True,
            }
        }
        while request:
            response = aws.dynamodb().batch_get_item(RequestItems=request)
            for item in response.get("Responses", {}).get(_table_name(), []):
                result[item["name"]] = item["type"]
                _known[(target, item["name"])] = item["type"]
            request = response.get("UnprocessedKeys") or {}
    return result


def register(target: str, new_types: Mapping[str, str]) -> None:
    """Fix the types of names seen for the first time, within the per-target cap.

    Raises Invalid when the cap would be passed, or when a concurrent writer fixed a name to
    another type first.
    """
    pending = dict(new_types)
    for _ in range(3):
        if not pending:
            return
        names = list(pending)
        for start in range(0, len(names), _TRANSACTION_LIMIT):
            chunk = {name: pending[name] for name in names[start : start + _TRANSACTION_LIMIT]}
            if _register_chunk(target, chunk):
                for name in chunk:
                    _known[(target, name)] = chunk[name]
                    del pending[name]
        # Whatever is left was registered concurrently by someone else: compare their types.
        existing = types_of(target, pending)
        clashes = [
            {
                "path": f"custom_attributes.{name}",
                "message": f"{name} holds {existing[name]} values; got a {kind}",
            }
            for name, kind in pending.items()
            if name in existing and existing[name] != kind
        ]
        if clashes:
            raise Invalid("Some custom attributes are not valid.", clashes)
        pending = {name: kind for name, kind in pending.items() if name not in existing}
    if pending:
        raise Retryable(f"could not register custom attributes {sorted(pending)}")


def _register_chunk(target: str, chunk: Mapping[str, str]) -> bool:
    """True when every name was written; False when some name already existed."""
    table_name = _table_name()
    count = Decimal(len(chunk))
    actions: list[dict[str, Any]] = [
        {
            "Update": {
                "TableName": table_name,
                "Key": {"target": {"S": COUNTER_TARGET}, "name": {"S": target}},
                "UpdateExpression": "ADD #n :k",
                "ConditionExpression": "attribute_not_exists(#n) OR #n <= :room",
                "ExpressionAttributeNames": {"#n": "names"},
                "ExpressionAttributeValues": {
                    ":k": {"N": str(count)},
                    ":room": {"N": str(MAX_ATTRIBUTE_NAMES - len(chunk))},
                },
            }
        }
    ]
    for name, kind in chunk.items():
        actions.append(
            {
                "Put": {
                    "TableName": table_name,
                    "Item": {"target": {"S": target}, "name": {"S": name}, "type": {"S": kind}},
                    "ConditionExpression": "attribute_not_exists(#name)",
                    "ExpressionAttributeNames": {"#name": "name"},
                }
            }
        )
    try:
        aws.client("dynamodb").transact_write_items(TransactItems=actions)
    except ClientError as error:
        records.raise_if_throttled(error)
        if error.response.get("Error", {}).get("Code") != "TransactionCanceledException":
            raise
        reasons = error.response.get("CancellationReasons") or []
        counter_failed = bool(reasons) and reasons[0].get("Code") == "ConditionalCheckFailed"
        names_failed = any(reason.get("Code") == "ConditionalCheckFailed" for reason in reasons[1:])
        if counter_failed and not names_failed:
            raise Invalid(
                f"A workspace holds at most {MAX_ATTRIBUTE_NAMES} custom attribute names for {target}.",
                [
                    {"path": f"custom_attributes.{name}", "message": "no room for a new attribute name"}
                    for name in chunk
                ],
            ) from error
        return False
    return True
