"""POST /v1/imports' request, read before anything else (API.md, "CSV in and out"): a CSV body
(`Content-Type: text/csv`, up to 5 MB) or JSON `{"filename"}` (up to 256 KB, as every body).

The resolver's guard would refuse a body over 256 KB and parse every body as JSON, so this route
reads its own request (http.resolver.reads_own_request): the caller first (401, then 403 for a
role other than admin, before anything is said about the body), then the body by its type.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

from segmentation.auth.keys import Principal
from segmentation.errors import Unauthorized
from segmentation.http.auth import ADMINS, check
from segmentation.http.body import MalformedBody, body_bytes, parse

CSV_TYPES = ("text/csv", "application/csv")


def is_csv(headers: Mapping[str, str]) -> bool:
    content_type = headers.get("content-type", "").split(";", 1)[0].strip().lower()
    return content_type in CSV_TYPES


def read(event: Mapping[str, Any]) -> dict[str, Any]:
    """{"csv": bytes} for a CSV body, else the JSON object sent (its fields checked by the route)."""
    context = (event.get("requestContext") or {}).get("authorizer") or {}
    if not context.get("role"):
        raise Unauthorized("Send a valid API key as `Authorization: Bearer <key>`.")
    check(Principal(role=str(context["role"]), key_id=str(context.get("key_id") or "")), ADMINS, None)
    headers = {str(name).lower(): str(value) for name, value in (event.get("headers") or {}).items()}
    if not is_csv(headers):
        value = parse(body_bytes(event.get("body"), bool(event.get("isBase64Encoded"))))
        if not isinstance(value, dict):
            raise MalformedBody('Send a CSV (Content-Type: text/csv) or JSON {"filename": "users.csv"}.')
        return value
    raw = event.get("body") or ""
    try:
        data = base64.b64decode(raw, validate=True) if event.get("isBase64Encoded") else str(raw).encode()
    except (binascii.Error, ValueError) as error:  # UnicodeEncodeError included (a lone surrogate)
        raise MalformedBody("The request body could not be read: send UTF-8 CSV.") from error
    return {"csv": data}
