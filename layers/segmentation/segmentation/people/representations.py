"""Users and companies as the API shows them (API.md): one shaping for every route and template."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from segmentation.engine.fields import FIELD_DEFAULTS, holds_timestamps
from segmentation.values import format_timestamp, json_number
from segmentation.vocabulary import TAG_IDS, is_number

_USER_STRINGS = ("email", "name", "phone")
_USER_TIMES = ("signed_up_at", "last_seen_at")
_COMPANY_STRINGS = ("name", "plan", "industry", "website")
_COMPANY_NUMBERS = ("monthly_spend", "size")


def user_json(item: Mapping[str, Any], segments: Iterable[str]) -> dict[str, Any]:
    body: dict[str, Any] = {"user_id": item["user_id"]}
    body.update({name: item.get(name) for name in _USER_STRINGS})
    body.update({name: time_json(item.get(name)) for name in _USER_TIMES})
    body["session_count"] = int(item.get("session_count", 0))
    body["unsubscribed_from_emails"] = bool(item.get("unsubscribed_from_emails", False))
    body["email_status"] = str(item.get("email_status") or FIELD_DEFAULTS["email_status"])
    body["company_ids"] = list(item.get("company_ids") or [])
    tags = item.get(TAG_IDS)
    body["tag_ids"] = sorted(str(tag) for tag in tags) if isinstance(tags, set | frozenset | list) else []
    body["custom_attributes"] = attributes_json(item.get("custom_attributes") or {})
    body["segments"] = sorted(segments)
    body["created_at"] = time_json(item.get("created_at"))
    body["updated_at"] = time_json(item.get("updated_at"))
    return body


def company_json(item: Mapping[str, Any], user_count: int, segments: Iterable[str]) -> dict[str, Any]:
    body: dict[str, Any] = {"company_id": item["company_id"]}
    body.update({name: item.get(name) for name in _COMPANY_STRINGS[:2]})
    body.update({name: _number(item.get(name)) for name in _COMPANY_NUMBERS})
    body.update({name: item.get(name) for name in _COMPANY_STRINGS[2:]})
    body["remote_created_at"] = time_json(item.get("remote_created_at"))
    body["custom_attributes"] = attributes_json(item.get("custom_attributes") or {})
    body["user_count"] = user_count
    body["segments"] = sorted(segments)
    body["created_at"] = time_json(item.get("created_at"))
    body["updated_at"] = time_json(item.get("updated_at"))
    return body


def attributes_json(attributes: Mapping[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for name, value in sorted(attributes.items()):
        if holds_timestamps(name) and is_number(value):
            result[name] = format_timestamp(value)
        elif isinstance(value, Decimal):
            result[name] = json_number(value)
        else:
            result[name] = value
    return result


def time_json(value: Any) -> Any:
    if value is None or isinstance(value, str):
        return value
    return format_timestamp(value)


def _number(value: Any) -> int | float | None:
    return None if value is None else json_number(Decimal(value))
