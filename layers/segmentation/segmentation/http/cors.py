"""CORS on the three identity routes, and only there (API.md, Authentication and roles).

Browsers call POST …/logins, POST …/events and GET …/messages from the customer's own web app,
another origin. An origin listed in ALLOWED_ORIGINS is named back in Access-Control-Allow-Origin on
every answer of those routes, errors included; any other origin gets no CORS header, and no answer
is ever `*`. Every answer of those routes says `Vary: Origin`, so that a cache never hands one
origin's answer to another.

template.yaml routes the OPTIONS of those three paths to IngestFunction without an authorizer (a
browser sends no credentials with a preflight): `router` answers them 204, and `add_headers` says
what the route allows. Answers API Gateway makes itself (its throttling, a crashed function) cannot
choose among listed origins and carry no CORS header (docs/api-notes.md, Browsers).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from segmentation.auth.keys import identity_route_method
from segmentation.http.presenters import no_content
from segmentation.settings import get_settings

ALLOWED_HEADERS = "Content-Type, X-User-Hash"
PREFLIGHT_MAX_AGE_SECONDS = 600

# Route functions have no return annotation on purpose: Powertools would validate the Response against it.
router = APIGatewayRouter()


@router.route("/v1/users/<user_id>/logins", method="OPTIONS", include_in_schema=False)
@router.route("/v1/users/<user_id>/events", method="OPTIONS", include_in_schema=False)
@router.route("/v1/users/<user_id>/messages", method="OPTIONS", include_in_schema=False)
def preflight(user_id: str):
    return no_content()


def headers_for(
    method: str, path: str, origin: str | None, allowed_origins: Collection[str]
) -> dict[str, str]:
    """The CORS headers of the answer to `method path` from a page of `origin`: none off the
    identity routes, only `Vary` for an origin not listed."""
    route_method = identity_route_method(path)
    is_preflight = method.upper() == "OPTIONS"
    if route_method is None or not (is_preflight or method.upper() == route_method):
        return {}
    headers = {"Vary": "Origin"}
    if not origin or origin not in allowed_origins:
        return headers
    headers["Access-Control-Allow-Origin"] = origin
    if is_preflight:
        headers["Access-Control-Allow-Methods"] = route_method
        headers["Access-Control-Allow-Headers"] = ALLOWED_HEADERS
        headers["Access-Control-Max-Age"] = str(PREFLIGHT_MAX_AGE_SECONDS)
    return headers


def add_headers(event: Mapping[str, Any], response: dict[str, Any]) -> dict[str, Any]:
    """The resolver's proxy answer to `event`, with the CORS headers of its route."""
    headers = headers_for(
        str(event.get("httpMethod") or ""),
        str(event.get("path") or ""),
        _origin(event.get("headers")),
        get_settings().allowed_origins,
    )
    if headers:
        multi = response.setdefault("multiValueHeaders", {})
        for name, value in headers.items():
            multi[name] = [*multi.get(name, []), value] if name == "Vary" else [value]
    return response


def _origin(headers: Any) -> str | None:
    if not isinstance(headers, Mapping):
        return None
    return next((str(value) for name, value in headers.items() if str(name).lower() == "origin"), None)
