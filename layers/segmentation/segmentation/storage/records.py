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
from decimal import Decimal
from typing import Any

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
) -> tuple[dict[str, Any], bool]:
    """Apply sent fields (None removes) and custom attribute changes; return (new item, created)."""
    removes = list(attribute_removes)
    for _ in range(3):
        updated = _update_existing(table_name, key, fields, attribute_sets, removes, now)
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
) -> dict[str, Any] | None:
    expression = Expression()
    for attribute, value in fields.items():
        if value is None:
            expression.removes.append(expression.name(attribute))
        else:
            expression.sets.append(f"{expression.name(attribute)} = {expression.value(value)}")
    custom = expression.name("custom_attributes") if attribute_sets or attribute_removes else ""
    for attribute, value in attribute_sets.items():
        expression.sets.append(f"{custom}.{expression.name(attribute)} = {expression.value(value)}")
    for attribute in attribute_removes:
        expression.removes.append(f"{custom}.{expression.name(attribute)}")
    expression.sets.append(f"{expression.name('updated_at')} = {expression.value(_epoch(now))}")
    expression.adds.append(f"{expression.name('rev')} {expression.value(_ONE)}")
    (key_name,) = key
    condition = f"attribute_exists({expression.name(key_name)})"
    if attribute_sets or attribute_removes:
        # Nested SETs need the map to exist; every item this module creates has one.
        condition += f" AND attribute_type({custom}, {expression.value('M')})"
    try:
        response = dynamo.call(
            "update_item",
            TableName=table_name,
            Key=dict(key),
            ReturnValues="ALL_NEW",
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
            **expression.arguments(condition),
        )
    except dynamo.ConditionFailed as failed:
        if failed.item is None:
            return None
        # The item exists without a custom_attributes map (written by something else): give it one.
        merged = {name: value for name, value in attribute_sets.items()}
        return _update_existing(table_name, key, {**fields, "custom_attributes": merged}, {}, [], now)
    item: dict[str, Any] = response["Attributes"]
    return item


def _create(
    table_name: str,
    key: Mapping[str, str],
    fields: Mapping[str, Any],
    attribute_sets: Mapping[str, Any],
    now: float,
    defaults: Mapping[str, Any],
) -> dict[str, Any] | None:
    expression = Expression()
    values = {**defaults, **{name: value for name, value in fields.items() if value is not None}}
    values.setdefault("custom_attributes", {})
    values["custom_attributes"] = {**values["custom_attributes"], **attribute_sets}
    values.update(created_at=_epoch(now), updated_at=_epoch(now), rev=_ONE)
    values[INCARNATION] = secrets.token_hex(8)
    for attribute, value in values.items():
        expression.sets.append(f"{expression.name(attribute)} = {expression.value(value)}")
    (key_name,) = key
    condition = f"attribute_not_exists({expression.name(key_name)})"
    try:
        response = dynamo.call(
            "update_item",
            TableName=table_name,
            Key=dict(key),
            ReturnValues="ALL_NEW",
            **expression.arguments(condition),
        )
    except dynamo.ConditionFailed:
        return None
    item: dict[str, Any] = response["Attributes"]
    return item


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
