"""The Users table: upserts, reads, deletes and logins."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from segmentation.errors import NotFound
from segmentation.settings import get_settings
from segmentation.storage import dynamo, people_items
from segmentation.values import epoch_millis

# Written on creation so filters see a real 0 / false rather than an unknown value.
NEW_USER_DEFAULTS = {"session_count": Decimal(0), "unsubscribed_from_emails": False, "events": {}}
# `email_status` is stored only when SES reported the address bad (absent: ok); it concerns the
# address the user had then, so a new `email` removes it in the same write.
RESETS = {"email": "email_status"}
BOUNCED, COMPLAINED = "bounced", "complained"


def _table_name() -> str:
    return get_settings().users_table


def get(user_id: str) -> dict[str, Any] | None:
    return people_items.get(_table_name(), {"user_id": user_id})


def upsert(
    user_id: str,
    fields: Mapping[str, Any],
    attribute_sets: Mapping[str, Any],
    attribute_removes: Iterable[str],
    now: float,
) -> tuple[dict[str, Any], bool]:
    """Returns (the user item after the write, whether it was created)."""
    return people_items.upsert(
        _table_name(),
        {"user_id": user_id},
        fields,
        attribute_sets,
        attribute_removes,
        now,
        NEW_USER_DEFAULTS,
        RESETS,
    )


def unsubscribe(user_id: str, now: float) -> bool:
    """Set `unsubscribed_from_emails` true as an API write would (rev +1, updated_at), so the
    stream updates segments; only if the user exists and is not unsubscribed already (a repeat
    writes nothing, a deleted user is not created again). True when this call changed it."""
    try:
        dynamo.call(
            "update_item",
            TableName=_table_name(),
            Key={"user_id": user_id},
            UpdateExpression="SET #unsub = :true, #up = :now ADD #rev :one",
            ConditionExpression="attribute_exists(#id) AND (attribute_not_exists(#unsub) OR #unsub <> :true)",
            ExpressionAttributeNames={
                "#id": "user_id",
                "#unsub": "unsubscribed_from_emails",
                "#up": "updated_at",
                "#rev": "rev",
            },
            ExpressionAttributeValues={":true": True, ":now": epoch_millis(now), ":one": Decimal(1)},
        )
    except dynamo.ConditionFailed:
        return False
    return True


def bounced_action(user_id: str, address: str, now: float) -> dict[str, Any]:
    """A transaction action: the user's `email_status` becomes bounced, if their email is still
    `address` (a bounce of an address they no longer have says nothing about them) and no
    complaint was recorded (the stronger status stays)."""
    return {
        "Update": {
            "TableName": _table_name(),
            "Key": {"user_id": user_id},
            "UpdateExpression": "SET #status = :bounced, #up = :now ADD #rev :one",
            "ConditionExpression": (
                "#email = :address AND (attribute_not_exists(#status) OR #status <> :complained)"
            ),
            "ExpressionAttributeNames": {
                "#status": "email_status",
                "#email": "email",
                "#up": "updated_at",
                "#rev": "rev",
            },
            "ExpressionAttributeValues": {
                ":bounced": BOUNCED,
                ":complained": COMPLAINED,
                ":address": address,
                ":now": epoch_millis(now),
                ":one": Decimal(1),
            },
        }
    }


def complained_action(user_id: str, now: float) -> dict[str, Any]:
    """A transaction action: the user complained: `email_status` complained and unsubscribed
    from emails (until an app sets it back), whichever address they have now."""
    return {
        "Update": {
            "TableName": _table_name(),
            "Key": {"user_id": user_id},
            "UpdateExpression": "SET #status = :complained, #unsubscribed = :yes, #up = :now ADD #rev :one",
            "ConditionExpression": "attribute_exists(#id)",
            "ExpressionAttributeNames": {
                "#id": "user_id",
                "#status": "email_status",
                "#unsubscribed": "unsubscribed_from_emails",
                "#up": "updated_at",
                "#rev": "rev",
            },
            "ExpressionAttributeValues": {
                ":complained": COMPLAINED,
                ":yes": True,
                ":now": epoch_millis(now),
                ":one": Decimal(1),
            },
        }
    }


def delete(user_id: str) -> dict[str, Any]:
    return people_items.delete(_table_name(), {"user_id": user_id}, "user")


def record_login(user_id: str, at: Decimal, now: float) -> dict[str, Any]:
    """Count a login and move last_seen_at forward to `at` (never back). Returns the new item.

    One atomic UpdateItem in the usual case; when `at` is not later than the stored value the
    condition fails and a second UpdateItem only counts the session. Concurrent logins all count.
    """
    updated_at = epoch_millis(now)
    names = {
        "#id": "user_id",
        "#seen": "last_seen_at",
        "#count": "session_count",
        "#rev": "rev",
        "#up": "updated_at",
    }
    try:
        response = dynamo.call(
            "update_item",
            TableName=_table_name(),
            Key={"user_id": user_id},
            UpdateExpression="SET #seen = :at, #up = :now ADD #count :one, #rev :one",
            ConditionExpression="attribute_exists(#id) AND (attribute_not_exists(#seen) OR #seen < :at)",
            ExpressionAttributeNames=names,
            ExpressionAttributeValues={":at": at, ":now": updated_at, ":one": Decimal(1)},
            ReturnValues="ALL_NEW",
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
        item: dict[str, Any] = response["Attributes"]
        return item
    except dynamo.ConditionFailed as failed:
        if failed.item is None:
            raise NotFound(f"No user has the id {user_id!r}.") from failed
    try:
        response = dynamo.call(
            "update_item",
            TableName=_table_name(),
            Key={"user_id": user_id},
            UpdateExpression="SET #up = :now ADD #count :one, #rev :one",
            ConditionExpression="attribute_exists(#id)",
            ExpressionAttributeNames={key: names[key] for key in ("#id", "#count", "#rev", "#up")},
            ExpressionAttributeValues={":now": updated_at, ":one": Decimal(1)},
            ReturnValues="ALL_NEW",
        )
    except dynamo.ConditionFailed as failed:
        raise NotFound(f"No user has the id {user_id!r}.") from failed
    item = response["Attributes"]
    return item
