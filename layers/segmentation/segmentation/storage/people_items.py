"""Upsert, read and delete of keyed records (users, companies): one UpdateItem per upsert.

Every record carries `rev` (+1 on every write through here) and `incarnation` (a random token
set at creation), which upkeep conditions its writes on.

An upsert first tries to update an existing item (`attribute_exists(key)`): the common case is
one call, and its success tells "updated" (200) from "created" (201) without a read. Only a
record that does not exist yet takes a second call, which creates it (`attribute_not_exists`).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from botocore.exceptions import ClientError

from segmentation.errors import NotFound, Retryable
from segmentation.storage import dynamo
from segmentation.values import epoch_millis

_ONE = Decimal(1)

KEY_ATTRIBUTE: dict[str, str] = {"users": "user_id", "companies": "company_id"}
# A random token written when a record is created and never changed: a record deleted and created
# again is another incarnation, so nothing meant for the old one (upkeep's writes) lands on it.
INCARNATION = "incarnation"


class Expression:
    """Builds SET/REMOVE/ADD clauses with placeholder names, so reserved words never matter."""

    def __init__(self) -> None:
        self.names: dict[str, str] = {}
        self.values: dict[str, Any] = {}
        self.sets: list[str] = []
        self.removes: list[str] = []
        self.adds: list[str] = []

    def name(self, attribute: str) -> str:
        placeholder = f"#n{len(self.names)}"
        self.names[placeholder] = attribute
        return placeholder

    def value(self, value: Any) -> str:
        placeholder = f":v{len(self.values)}"
        self.values[placeholder] = value
        return placeholder

    def update_expression(self) -> str:
        parts = []
        if self.sets:
            parts.append("SET " + ", ".join(self.sets))
        if self.removes:
            parts.append("REMOVE " + ", ".join(self.removes))
        if self.adds:
            parts.append("ADD " + ", ".join(self.adds))
        return " ".join(parts)

    def arguments(self, condition: str) -> dict[str, Any]:
        arguments: dict[str, Any] = {
            "UpdateExpression": self.update_expression(),
            "ConditionExpression": condition,
            "ExpressionAttributeNames": self.names,
        }
        if self.values:
            arguments["ExpressionAttributeValues"] = self.values
        return arguments


def upsert(
    table_name: str,
    key: Mapping[str, str],
    fields: Mapping[str, Any],
    attribute_sets: Mapping[str, Any],
    attribute_removes: Iterable[str],
    now: float,
    defaults: Mapping[str, Any] | None = None,
    resets: Mapping[str, str] | None = None,
) -> tuple[dict[str, Any], bool]:
    """Apply sent fields (None removes) and custom attribute changes; return (new item, created).
    `resets` {field: dependent}: a sent field whose value differs from the stored one removes
    its dependent attribute in the same write (users: a new `email` clears `email_status`)."""
    removes = list(attribute_removes)
    for _ in range(3):
        updated = _update_existing(table_name, key, fields, attribute_sets, removes, now, resets or {})
        if updated is not None:
            return updated, False
        created = _create(table_name, key, fields, attribute_sets, now, defaults or {})
        if created is not None:
            return created, True
        # Lost a race against a concurrent creator: the item exists now, so update it.
    raise Retryable(f"upsert of {dict(key)} kept racing")


def _update_existing(
    table_name: str,
    key: Mapping[str, str],
    fields: Mapping[str, Any],
    attribute_sets: Mapping[str, Any],
    attribute_removes: list[str],
    now: float,
    resets: Mapping[str, str],
) -> dict[str, Any] | None:
    """The update of an existing item, or None when there is none. One call in the usual case;
    a second when the item lacks a custom_attributes map, or holds a dependent of `resets` that
    the sent value makes stale (the first call's condition says so, with the old item)."""
    changed: dict[str, Any] = {}  # field -> the stored value it replaces, for each reset due
    for _ in range(3):
        try:
            response = dynamo.call(
                "update_item",
                TableName=table_name,
                Key=dict(key),
                ReturnValues="ALL_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
                **_update_arguments(key, fields, attribute_sets, attribute_removes, now, resets, changed),
            )
        except dynamo.ConditionFailed as failed:
            old = failed.item
            if old is None:
                return None
            if (attribute_sets or attribute_removes) and not isinstance(old.get("custom_attributes"), dict):
                # The item exists without a custom_attributes map (written by something else): give it one.
                fields = {**fields, "custom_attributes": dict(attribute_sets)}
                attribute_sets, attribute_removes = {}, []
            changed = resets_due(old, fields, resets)
            continue
        item: dict[str, Any] = response["Attributes"]
        return item
    raise Retryable(f"update of {dict(key)} kept racing")


def resets_due(
    old: Mapping[str, Any], fields: Mapping[str, Any], resets: Mapping[str, str]
) -> dict[str, Any]:
    """field -> its stored value, for each field of `resets` whose sent value replaces a stored
    one that has a dependent to remove."""
    return {
        field: old.get(field)
        for field, dependent in resets.items()
        if field in fields and dependent in old and old.get(field) != fields[field]
    }


def _reset_clauses(
    expression: Expression, fields: Mapping[str, Any], resets: Mapping[str, str], changed: Mapping[str, Any]
) -> str:
    """Conditions (and removals) of `resets`: with no reset known due, the write goes through only
    while no dependent is stale (absent, or its field already holds the sent value); a reset
    known due removes the dependent while its field still holds the value seen."""
    clauses = ""
    for field, dependent in resets.items():
        if field not in fields:
            continue
        field_name, dependent_name = expression.name(field), expression.name(dependent)
        if field in changed:
            expression.removes.append(dependent_name)
            seen = changed[field]
            clauses += (
                f" AND attribute_not_exists({field_name})"
                if seen is None
                else f" AND {field_name} = {expression.value(seen)}"
            )
            continue
        sent = fields[field]
        same = (
            f"attribute_not_exists({field_name})"
            if sent is None
            else f"{field_name} = {expression.value(sent)}"
        )
        clauses += f" AND (attribute_not_exists({dependent_name}) OR {same})"
    return clauses


def _create(
    table_name: str,
    key: Mapping[str, str],
    fields: Mapping[str, Any],
    attribute_sets: Mapping[str, Any],
    now: float,
    defaults: Mapping[str, Any],
) -> dict[str, Any] | None:
    try:
        response = dynamo.call(
            "update_item",
            TableName=table_name,
            Key=dict(key),
            ReturnValues="ALL_NEW",
            **_create_arguments(key, fields, attribute_sets, now, defaults),
        )
    except dynamo.ConditionFailed:
        return None
    item: dict[str, Any] = response["Attributes"]
    return item


def _update_arguments(
    key: Mapping[str, str],
    fields: Mapping[str, Any],
    attribute_sets: Mapping[str, Any],
    attribute_removes: Iterable[str],
    now: float,
    resets: Mapping[str, str] | None = None,
    changed: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The update of an existing record: sent fields (None removes), custom attributes by name,
    and `resets` (see `upsert`; `changed`: the resets known due, from `resets_due`)."""
    removes = list(attribute_removes)
    expression = Expression()
    for attribute, value in fields.items():
        if value is None:
            expression.removes.append(expression.name(attribute))
        else:
            expression.sets.append(f"{expression.name(attribute)} = {expression.value(value)}")
    custom = expression.name("custom_attributes") if attribute_sets or removes else ""
    for attribute, value in attribute_sets.items():
        expression.sets.append(f"{custom}.{expression.name(attribute)} = {expression.value(value)}")
    for attribute in removes:
        expression.removes.append(f"{custom}.{expression.name(attribute)}")
    expression.sets.append(f"{expression.name('updated_at')} = {expression.value(_epoch(now))}")
    expression.adds.append(f"{expression.name('rev')} {expression.value(_ONE)}")
    (key_name,) = key
    condition = f"attribute_exists({expression.name(key_name)})"
    if attribute_sets or removes:
        # Nested SETs need the map to exist; every item this module creates has one.
        condition += f" AND attribute_type({custom}, {expression.value('M')})"
    condition += _reset_clauses(expression, fields, resets or {}, changed or {})
    return expression.arguments(condition)


def _create_arguments(
    key: Mapping[str, str],
    fields: Mapping[str, Any],
    attribute_sets: Mapping[str, Any],
    now: float,
    defaults: Mapping[str, Any],
) -> dict[str, Any]:
    """The write of a record that does not exist yet (conditioned on that)."""
    expression = Expression()
    values = {**defaults, **{name: value for name, value in fields.items() if value is not None}}
    values.setdefault("custom_attributes", {})
    values["custom_attributes"] = {**values["custom_attributes"], **attribute_sets}
    values.update(created_at=_epoch(now), updated_at=_epoch(now), rev=_ONE)
    values[INCARNATION] = secrets.token_hex(8)
    for attribute, value in values.items():
        expression.sets.append(f"{expression.name(attribute)} = {expression.value(value)}")
    (key_name,) = key
    return expression.arguments(f"attribute_not_exists({expression.name(key_name)})")


@dataclass(frozen=True)
class Upsert:
    """One record's sent fields (None removes) and custom attribute changes."""

    fields: Mapping[str, Any]
    attribute_sets: Mapping[str, Any]
    attribute_removes: tuple[str, ...] = ()


def upsert_many(
    table_name: str,
    key_name: str,
    upserts: Mapping[str, Upsert],
    now: float,
    defaults: Mapping[str, Any] | None = None,
) -> set[str]:
    """Upsert many records in few calls: one consistent BatchGetItem per 100 tells which exist,
    then each record's update (or creation) goes in TransactWriteItems of up to 100, conditioned
    as `upsert` conditions them. A record whose condition failed (created, deleted or given
    another shape meanwhile) falls back to `upsert`, which settles its race. Returns the ids that
    could not be written (DynamoDB's 400 KB per item)."""
    found = {item[key_name]: item for item in get_many(table_name, key_name, upserts, consistent=True)}
    actions: dict[str, dict[str, Any]] = {}
    for record_id, one in upserts.items():
        key = {key_name: record_id}
        item = found.get(record_id)
        if item is None:
            arguments = _create_arguments(key, one.fields, one.attribute_sets, now, defaults or {})
        elif isinstance(item.get("custom_attributes"), dict) or not one.attribute_sets:
            arguments = _update_arguments(key, one.fields, one.attribute_sets, one.attribute_removes, now)
        else:  # an item without the map (written by something else): give it one
            fields = {**one.fields, "custom_attributes": dict(one.attribute_sets)}
            arguments = _update_arguments(key, fields, {}, (), now)
        actions[record_id] = {"Update": {"TableName": table_name, "Key": key, **arguments}}
    failed: set[str] = set()
    pending = list(actions)
    while pending:
        chunk, pending = pending[: dynamo.TRANSACTION_LIMIT], pending[dynamo.TRANSACTION_LIMIT :]
        try:
            reasons = dynamo.transact([actions[record_id] for record_id in chunk])
        except ClientError as error:
            if not too_large(error):
                raise
            reasons = None
            failed |= _one_by_one(table_name, key_name, chunk, upserts, now, defaults)
        if reasons is None:
            continue
        lost = [
            record_id for record_id, reason in zip(chunk, reasons, strict=True) if reason.condition_failed
        ]
        pending = [record_id for record_id in chunk if record_id not in lost] + pending
        failed |= _one_by_one(table_name, key_name, lost, upserts, now, defaults)
    return failed


def _one_by_one(
    table_name: str,
    key_name: str,
    record_ids: Iterable[str],
    upserts: Mapping[str, Upsert],
    now: float,
    defaults: Mapping[str, Any] | None,
) -> set[str]:
    failed = set()
    for record_id in record_ids:
        one = upserts[record_id]
        try:
            upsert(
                table_name,
                {key_name: record_id},
                one.fields,
                one.attribute_sets,
                one.attribute_removes,
                now,
                defaults,
            )
        except ClientError as error:
            if not too_large(error):
                raise
            failed.add(record_id)
    return failed


def too_large(error: ClientError) -> bool:
    """DynamoDB refused a write because an item would pass 400 KB."""
    message = str(error.response.get("Error", {}).get("Message", "")).lower()
    return dynamo.error_code(error) == "ValidationException" and "size" in message


def get(table_name: str, key: Mapping[str, str]) -> dict[str, Any] | None:
    item: dict[str, Any] | None = dynamo.call("get_item", TableName=table_name, Key=dict(key)).get("Item")
    return item


def delete(table_name: str, key: Mapping[str, str], what: str) -> dict[str, Any]:
    """Delete one record; NotFound when absent. Returns the deleted item."""
    (key_name,) = key
    try:
        response = dynamo.call(
            "delete_item",
            TableName=table_name,
            Key=dict(key),
            ConditionExpression="attribute_exists(#k)",
            ExpressionAttributeNames={"#k": key_name},
            ReturnValues="ALL_OLD",
        )
    except dynamo.ConditionFailed as failed:
        raise NotFound(f"No {what} has the id {key[key_name]!r}.") from failed
    item: dict[str, Any] = response.get("Attributes", {})
    return item


def get_many(
    table_name: str, key_name: str, ids: Iterable[str], *, consistent: bool = False
) -> list[dict[str, Any]]:
    """The existing items among these ids (any number), in the order given."""
    wanted = list(dict.fromkeys(ids))
    found = dynamo.batch_get(table_name, [{key_name: one} for one in wanted], consistent=consistent)
    order = {one: index for index, one in enumerate(wanted)}
    return sorted(found, key=lambda item: order[item[key_name]])


def _epoch(now: float) -> Decimal:
    return epoch_millis(now)
