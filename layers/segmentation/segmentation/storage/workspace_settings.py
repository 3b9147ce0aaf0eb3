"""The WorkspaceSettings table (key `setting_id`): the workspace's settings an admin changes at
run time, in one item `workspace`: `email_frequency_cap` ({"max", "days"} or absent: no cap),
`updated_at`. What is set at deploy (the time zone) stays in segmentation.settings.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from segmentation.settings import get_settings
from segmentation.storage import dynamo

_KEY = {"setting_id": "workspace"}


def _table_name() -> str:
    return get_settings().workspace_settings_table


def get() -> dict[str, Any]:
    """The stored settings ({} before any PUT): one consistent GetItem."""
    item: dict[str, Any] = (
        dynamo.call("get_item", TableName=_table_name(), Key=_KEY, ConsistentRead=True).get("Item") or {}
    )
    return item


def put_frequency_cap(cap: Mapping[str, int] | None, now: float) -> dict[str, Any]:
    """Set (or, None, remove) the email frequency cap; the item after the write."""
    if cap is None:
        expression, values = "SET updated_at = :now REMOVE email_frequency_cap", {}
    else:
        expression, values = "SET updated_at = :now, email_frequency_cap = :cap", {":cap": dict(cap)}
    response = dynamo.call(
        "update_item",
        TableName=_table_name(),
        Key=_KEY,
        UpdateExpression=expression,
        ExpressionAttributeValues={**values, ":now": dynamo.number(now)},
        ReturnValues="ALL_NEW",
    )
    item: dict[str, Any] = response["Attributes"]
    return item
