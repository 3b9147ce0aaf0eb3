"""Stored items → the JSON of API.md (every key present; defaults for what was never set)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from aws_lambda_powertools.event_handler import Response, content_types
from pydantic import BaseModel

from segmentation.api_keys import ApiKey
from segmentation.http.models import ErrorBody
from segmentation.records import format_timestamp, json_number

_USER_STRINGS = ("email", "name", "phone")
_USER_TIMES = ("signed_up_at", "last_seen_at")
_COMPANY_STRINGS = ("name", "plan", "industry", "website")
_COMPANY_NUMBERS = ("monthly_spend", "size")


def user_json(item: Mapping[str, Any], segments: Iterable[str]) -> dict[str, Any]:
    body: dict[str, Any] = {"user_id": item["user_id"]}
    body.update({name: item.get(name) for name in _USER_STRINGS})
    body.update({name: _time(item.get(name)) for name in _USER_TIMES})
    body["session_count"] = int(item.get("session_count", 0))
    body["unsubscribed_from_emails"] = bool(item.get("unsubscribed_from_emails", False))
    body["company_ids"] = list(item.get("company_ids") or [])
    body["custom_attributes"] = attributes_json(item.get("custom_attributes") or {})
    body["segments"] = sorted(segments)
    body["created_at"] = _time(item.get("created_at"))
    body["updated_at"] = _time(item.get("updated_at"))
    return body


def company_json(item: Mapping[str, Any], user_count: int, segments: Iterable[str]) -> dict[str, Any]:
    body: dict[str, Any] = {"company_id": item["company_id"]}
    body.update({name: item.get(name) for name in _COMPANY_STRINGS[:2]})
    body.update({name: _number(item.get(name)) for name in _COMPANY_NUMBERS})
    body.update({name: item.get(name) for name in _COMPANY_STRINGS[2:]})
    body["remote_created_at"] = _time(item.get("remote_created_at"))
    body["custom_attributes"] = attributes_json(item.get("custom_attributes") or {})
    body["user_count"] = user_count
    body["segments"] = sorted(segments)
    body["created_at"] = _time(item.get("created_at"))
    body["updated_at"] = _time(item.get("updated_at"))
    return body


def attributes_json(attributes: Mapping[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for name, value in sorted(attributes.items()):
        if name.endswith("_at") and isinstance(value, Decimal | int | float) and not isinstance(value, bool):
            result[name] = format_timestamp(value)
        elif isinstance(value, Decimal):
            result[name] = json_number(value)
        else:
            result[name] = value
    return result


def message_json(message: Mapping[str, Any]) -> dict[str, Any]:
    """An in-app message from the inbox, with its delivery time as ISO 8601."""
    return {
        "message_id": message.get("message_id"),
        "subject": message.get("subject"),
        "body": message.get("body"),
        "delivered_at": _time(message.get("delivered_at")),
    }


def api_key_json(key: ApiKey) -> dict[str, Any]:
    return {
        "id": key.key_id,
        "role": key.role,
        "name": key.name,
        "created_at": format_timestamp(key.created_at),
        "revoked": key.revoked,
    }


def _time(value: Any) -> Any:
    if value is None or isinstance(value, str):
        return value
    return format_timestamp(value)


def _number(value: Any) -> int | float | None:
    return None if value is None else json_number(Decimal(value))


def respond(body: Any, status: int = 200) -> Response:
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=json.dumps(body))


def no_content() -> Response:
    return Response(status_code=204, content_type=None, body="")


def documented(status: int, model: type[BaseModel] | None, description: str, *errors: int) -> dict[int, Any]:
    """OpenAPI `responses` of a route: its success shape plus the error statuses it may answer."""
    responses: dict[int, Any] = {status: {"description": description}}
    if model is not None:
        responses[status]["content"] = {"application/json": {"model": model}}
    for code in (401, 403, *errors):
        responses[code] = {
            "description": _ERROR_DESCRIPTIONS[code],
            "content": {"application/json": {"model": ErrorBody}},
        }
    return responses


_ERROR_DESCRIPTIONS = {
    400: "Malformed JSON",
    401: "No key, or an unknown or revoked key",
    403: "The key's role does not allow this call",
    404: "Not found",
    409: "Conflict",
    413: "Body over 256 KB",
    422: "Invalid content; details name each bad field",
}
