"""The DataAttributes table: each custom attribute name's type, fixed by its first value.

Items are (target, name) → type. One counter item per target (target "#count", name = the
target) caps the number of names; a new name and the counter move together in one transaction.
Types never change once written, so the ones confirmed are cached for the process.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from segmentation.errors import Invalid, Retryable
from segmentation.settings import get_settings
from segmentation.storage import dynamo
from segmentation.vocabulary import MAX_ATTRIBUTE_NAMES

COUNTER_TARGET = "#count"
_TRANSACTION_LIMIT = 99  # 100 actions per transaction, one of them the counter
_known: dict[tuple[str, str], str] = {}


def clear_cache() -> None:
    _known.clear()


def _table_name() -> str:
    return get_settings().attributes_table


def all_types(target: str) -> dict[str, str]:
    """Every custom attribute of a target ("users" or "companies") → its type."""
    items = dynamo.query_all(
        TableName=_table_name(),
        KeyConditionExpression="#t = :t",
        ExpressionAttributeNames={"#t": "target"},
        ExpressionAttributeValues={":t": target},
    )
    found = {item["name"]: item["type"] for item in items}
    _known.update({(target, name): kind for name, kind in found.items()})
    return found


def types_of(target: str, names: Iterable[str]) -> dict[str, str]:
    """The fixed types of these names (names not seen yet are left out)."""
    wanted = list(dict.fromkeys(names))
    result = {name: _known[(target, name)] for name in wanted if (target, name) in _known}
    missing = [name for name in wanted if name not in result]
    keys = [{"target": target, "name": name} for name in missing]
    for item in dynamo.batch_get(_table_name(), keys, consistent=True):
        result[item["name"]] = item["type"]
        _known[(target, item["name"])] = item["type"]
    return result


def register(
    target: str,
    new_types: Mapping[str, str],
    *,
    limit: int = MAX_ATTRIBUTE_NAMES,
    path: Callable[[str], str] = lambda name: f"custom_attributes.{name}",
) -> None:
    """Fix the types of names seen for the first time, within the per-target cap (`limit`).

    Raises Invalid (each bad name at `path(name)`) when the cap would be passed, or when a
    concurrent writer fixed a name to another type first. Event names are registered here too
    (target "events", type "event").
    """
    pending = dict(new_types)
    for _ in range(3):
        if not pending:
            return
        names = list(pending)
        for start in range(0, len(names), _TRANSACTION_LIMIT):
            chunk = {name: pending[name] for name in names[start : start + _TRANSACTION_LIMIT]}
            if _register_chunk(target, chunk, limit, path):
                for name in chunk:
                    _known[(target, name)] = chunk[name]
                    del pending[name]
        # Whatever is left was registered concurrently by someone else: compare their types.
        existing = types_of(target, pending)
        clashes = [
            {
                "path": path(name),
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


def _register_chunk(target: str, chunk: Mapping[str, str], limit: int, path: Callable[[str], str]) -> bool:
    """True when every name was written; False when some name already existed."""
    table_name = _table_name()
    actions: list[dict[str, Any]] = [
        {
            "Update": {
                "TableName": table_name,
                "Key": {"target": COUNTER_TARGET, "name": target},
                "UpdateExpression": "ADD #n :k",
                "ConditionExpression": "attribute_not_exists(#n) OR #n <= :room",
                "ExpressionAttributeNames": {"#n": "names"},
                "ExpressionAttributeValues": {":k": len(chunk), ":room": limit - len(chunk)},
            }
        }
    ]
    for name, kind in chunk.items():
        actions.append(
            {
                "Put": {
                    "TableName": table_name,
                    "Item": {"target": target, "name": name, "type": kind},
                    "ConditionExpression": "attribute_not_exists(#name)",
                    "ExpressionAttributeNames": {"#name": "name"},
                }
            }
        )
    reasons = dynamo.transact(actions)
    if reasons is None:
        return True
    names_failed = any(reason.condition_failed for reason in reasons[1:])
    if reasons[0].condition_failed and not names_failed:
        raise Invalid(
            f"A workspace holds at most {limit} names of {target}.",
            [{"path": path(name), "message": f"no room for a new name: at most {limit}"} for name in chunk],
        )
    return False
