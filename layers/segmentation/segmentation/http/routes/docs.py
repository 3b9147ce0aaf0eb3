"""The OpenAPI document and a Swagger UI page, for every route of both API functions (no auth).

All three are static for a deploy and served to be cached: the document and the small page carry
an ETag (a request that holds it gets a 304) and are revalidated on each use; Swagger UI's own
files, under names holding a digest of their content, are kept by browsers for a year, so a
reload of the page sends about a kilobyte. No CDN: everything comes from this stack.
"""

from __future__ import annotations

import hashlib
import html
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path as FilePath

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from segmentation import errors
from segmentation.http.resolver import make_resolver
from segmentation.http.routes import (
    api_keys,
    changes,
    companies,
    jobs,
    messages,
    search,
    segments,
    settings,
    sources,
    tags,
    unsubscribe,
    users,
    webhooks,
)

# Route functions have no return annotation on purpose: Powertools would validate the Response against it.
router = APIGatewayRouter()
TITLE = "Segmentation and messaging API"
VERSION = "1.0.0"
DESCRIPTION = (
    "Send `Authorization: Bearer <api key>`. `POST /v1/users/{user_id}/logins` and "
    "`GET /v1/users/{user_id}/messages` also take `X-User-Hash: hex HMAC-SHA256(identity secret, user_id)`. "
    "The Segment routes (`/v1/batch`, `/v1/track`...) take an ingest or admin key as a Bearer token, as "
    "HTTP Basic auth (the key as user name, no password) or as `writeKey` in the body."
)


@cache
def openapi_json(base_path: str) -> str:
    """The document, built from a resolver holding every router (imports only when asked: the
    OpenAPI models alone cost about half a boto3 import)."""
    from aws_lambda_powertools.event_handler.openapi.models import APIKey, APIKeyIn, HTTPBase, Server

    routers = [
        users.router,
        companies.router,
        search.router,
        segments.router,
        messages.router,
        tags.router,
        jobs.router,
        api_keys.router,
        settings.router,
        sources.router,
        changes.router,
        webhooks.router,
    ]
    owners = [router.api_resolver for router in routers]
    try:
        documented = make_resolver(*routers)
    finally:
        # include_router points each router at the resolver it joined: give them back to their own.
        for one, owner in zip(routers, owners, strict=True):
            one.api_resolver = owner
    document = documented.get_openapi_json_schema(
        title=TITLE,
        version=VERSION,
        description=DESCRIPTION,
        servers=[Server(url=base_path or "/")],
        security_schemes={
            "apiKey": APIKey.model_validate(
                {"name": "Authorization", "in": APIKeyIn.header, "description": "Bearer <api key>"}
            ),
            "userHash": APIKey.model_validate(
                {"name": "X-User-Hash", "in": APIKeyIn.header, "description": "Identity hash"}
            ),
            "writeKeyBasic": HTTPBase.model_validate(
                {"scheme": "basic", "description": "The Segment routes' write key as user name, no password"}
            ),
        },
        security=[{"apiKey": []}],
    )
    # The unsubscribe routes take forms and answer pages, and imports take CSV bodies beside
    # JSON ones, which route signatures cannot say.
    parsed = json.loads(document)
    parsed["paths"].update(unsubscribe.OPENAPI_PATHS)
    parsed["paths"]["/v1/imports"]["post"]["requestBody"]["content"].update(jobs.CSV_BODY)
    return json.dumps(parsed, indent=2)


def _base_path() -> str:
    context = router.current_event.request_context
    stage = context.stage
    if stage and stage != "$default" and (context.path or "").startswith(f"/{stage}/"):
        return f"/{stage}"
    return ""


# --- caching: each answer has a strong ETag; a request that already holds it gets a 304 ---------

# The page and the document may change with a deploy: browsers keep them and revalidate each use.
REVALIDATE = "no-cache"
# An asset's URL holds a digest of its content: a new content is a new URL, so it is kept a year.
IMMUTABLE = "public, max-age=31536000, immutable"
# The docs page loads only its own files; Swagger UI sets style attributes and draws data: images.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'self'; frame-ancestors 'none'"
)


@dataclass(frozen=True)
class Static:
    body: str
    content_type: str
    digest: str  # of the body: hex SHA-256, first 32 characters

    @property
    def etag(self) -> str:
        return f'"{self.digest}"'


def _static(body: str, content_type: str) -> Static:
    return Static(body, content_type, hashlib.sha256(body.encode()).hexdigest()[:32])


def _held(if_none_match: str | None, etag: str) -> bool:
    """Whether an If-None-Match header names this ETag (weak comparison, RFC 9110 13.1.2)."""
    if not if_none_match:
        return False
    tags = [tag.strip() for tag in if_none_match.split(",")]
    return "*" in tags or etag in (tag.removeprefix("W/") for tag in tags)


def _serve(static: Static, cache_control: str, extra: dict[str, str] | None = None) -> Response:
    headers = {
        "ETag": static.etag,
        "Cache-Control": cache_control,
        "X-Content-Type-Options": "nosniff",
        **(extra or {}),
    }
    if _held(router.current_event.headers.get("if-none-match"), static.etag):
        return Response(status_code=304, headers=headers, body="")
    return Response(status_code=200, content_type=static.content_type, headers=headers, body=static.body)


# --- the OpenAPI document ------------------------------------------------------------------------


@cache
def _document(base_path: str) -> Static:
    return _static(openapi_json(base_path), "application/json")


@router.get("/v1/openapi.json", include_in_schema=False)
def openapi_document():
    return _serve(_document(_base_path()), REVALIDATE)


# --- the Swagger UI page and its files ---------------------------------------------------------

_SWAGGER_UI_START = """"use strict";
// Swagger UI over this stage's OpenAPI document, whose URL the page gives (data-spec).
window.ui = SwaggerUIBundle({
  url: document.getElementById("swagger-ui").getAttribute("data-spec"),
  dom_id: "#swagger-ui",
  deepLinking: true,
  docExpansion: "list",
  filter: true,
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
  layout: "BaseLayout",
});
"""


@cache
def _assets() -> dict[str, Static]:
    """File name (with a digest of its content) -> the file: Swagger UI's script and style, as the
    Powertools package in the layer ships them, and the few lines that start it."""
    from aws_lambda_powertools.event_handler.openapi import swagger_ui

    folder = FilePath(swagger_ui.__file__).parent
    files = [
        ("swagger-ui-bundle", ".js", (folder / "swagger-ui-bundle.min.js").read_text(encoding="utf-8")),
        ("swagger-ui", ".css", (folder / "swagger-ui.min.css").read_text(encoding="utf-8")),
        ("start", ".js", _SWAGGER_UI_START),
    ]
    found = {}
    for stem, suffix, body in files:
        static = _static(body, _ASSET_TYPES[suffix])
        found[f"{stem}.{static.digest[:12]}{suffix}"] = static
    return found


_ASSET_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}


@cache
def _page(base_path: str) -> Static:
    names = {name.split(".", 1)[0]: name for name in _assets()}
    folder = f"{base_path}/v1/docs"
    page = f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{html.escape(TITLE)}</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="{folder}/{names["swagger-ui"]}">
</head>
<body>
<div id="swagger-ui" data-spec="{base_path}/v1/openapi.json"></div>
<script src="{folder}/{names["swagger-ui-bundle"]}"></script>
<script src="{folder}/{names["start"]}"></script>
</body>
</html>
"""
    return _static(page, "text/html; charset=utf-8")


@router.get("/v1/docs", include_in_schema=False)
def docs_page():
    return _serve(_page(_base_path()), REVALIDATE, {"Content-Security-Policy": CONTENT_SECURITY_POLICY})


@router.get("/v1/docs/<asset>", include_in_schema=False)
def docs_asset(asset: str):
    found = _assets().get(asset)
    if found is None:
        raise errors.NotFound(f"The docs page has no file '{asset[:100]}'; load GET /v1/docs.")
    return _serve(found, IMMUTABLE)
