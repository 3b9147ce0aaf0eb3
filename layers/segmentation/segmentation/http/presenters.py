"""Stored items → the JSON of API.md (every key present; defaults for what was never set)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools.event_handler import Response, content_types
from pydantic import BaseModel

from segmentation.http.models import ErrorBody
from segmentation.people.representations import attributes_json, company_json, time_json, user_json
from segmentation.storage.api_keys import ApiKey
from segmentation.values import format_timestamp

__all__ = ["attributes_json", "company_json", "user_json"]


def message_json(message: Mapping[str, Any]) -> dict[str, Any]:
    """An in-app message from the inbox, with its delivery time as ISO 8601."""
    return {
        "message_id": message.get("message_id"),
        "subject": message.get("subject"),
        "body": message.get("body"),
        "delivered_at": time_json(message.get("delivered_at")),
    }


def api_key_json(key: ApiKey) -> dict[str, Any]:
    return {
        "id": key.key_id,
        "role": key.role,
        "name": key.name,
        "created_at": format_timestamp(key.created_at),
        "revoked": key.revoked,
    }


def respond(body: Any, status: int = 200) -> Response:
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=json.dumps(body))


def no_content() -> Response:
    return Response(status_code=204, content_type=None, body="")


# Every route may answer these: a body or query it cannot read (400), no or a bad key (401), a
# role that does not allow it (403), a value that breaks a rule (422), a busy service (429).
_ALWAYS = (400, 401, 403, 422, 429)


def documented(
    status: int,
    model: type[BaseModel] | None,
    description: str,
    *errors: int,
    links: dict[str, Any] | None = None,
) -> dict[int, Any]:
    """OpenAPI `responses` of a route: its success shape plus every error status it may answer.
    `links` (OpenAPI links from this answer to the operations it enables) let a client, and
    schemathesis' stateful phase, follow a created user, segment or message to its routes."""
    responses: dict[int, Any] = {status: {"description": description}}
    if model is not None:
        responses[status]["content"] = {"application/json": {"model": model}}
    if links:
        responses[status]["links"] = links
    for code in sorted({*_ALWAYS, *errors}):
        responses[code] = {
            "description": _ERROR_DESCRIPTIONS[code],
            "content": {"application/json": {"model": ErrorBody}},
        }
        if code == 429:
            responses[code]["headers"] = {"Retry-After": _RETRY_AFTER}
    return responses


# Every 429 carries it: the service's own (throttled) and API Gateway's THROTTLED (rate_limited).
_RETRY_AFTER = {
    "description": "Seconds to wait before retrying",
    "schema": {"type": "integer", "minimum": 1},
}


_ERROR_DESCRIPTIONS = {
    400: "Malformed: a body that is not UTF-8 JSON, or a cursor this API did not return",
    401: "No key, or an unknown or revoked key",
    403: "The key's role does not allow this call",
    404: "Not found",
    409: "Conflict",
    413: "Body over 256 KB",
    422: "Invalid content; details name each bad field",
    429: "Too many requests: this key is over its rate limit (rate_limited; wait Retry-After "
    "seconds), or the service is busy (throttled; retry in a moment)",
}


def link(operation_id: str, parameter: str, pointer: str) -> dict[str, Any]:
    """An OpenAPI link filling the path parameter of another operation from this answer's body."""
    return {"operationId": operation_id, "parameters": {parameter: f"$response.body#{pointer}"}}
