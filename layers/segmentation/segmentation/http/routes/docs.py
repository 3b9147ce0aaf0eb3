"""The OpenAPI document and a Swagger UI page, for every route of both API functions (no auth)."""

from __future__ import annotations

from functools import cache
from pathlib import Path as FilePath

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from segmentation.http.resolver import make_resolver
from segmentation.http.routes import api_keys, companies, messages, search, segments, users

# Route functions have no return annotation on purpose: Powertools would validate the Response against it.
router = APIGatewayRouter()
TITLE = "Segmentation and messaging API"
VERSION = "1.0.0"
DESCRIPTION = (
    "Send `Authorization: Bearer <api key>`. `POST /v1/users/{user_id}/logins` and "
    "`GET /v1/users/{user_id}/messages` also take `X-User-Hash: hex HMAC-SHA256(identity secret, user_id)`."
)


@cache
def openapi_json(base_path: str) -> str:
    """The document, built from a resolver holding every router (imports only when asked: the
    OpenAPI models alone cost about half a boto3 import)."""
    from aws_lambda_powertools.event_handler.openapi.models import APIKey, APIKeyIn, Server

    routers = [
        users.router,
        companies.router,
        search.router,
        segments.router,
        messages.router,
        api_keys.router,
    ]
    owners = [router.api_resolver for router in routers]
    try:
        documented = make_resolver(*routers)
    finally:
        # include_router points each router at the resolver it joined: give them back to their own.
        for one, owner in zip(routers, owners, strict=True):
            one.api_resolver = owner
    return documented.get_openapi_json_schema(
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
        },
        security=[{"apiKey": []}],
    )


def _base_path() -> str:
    context = router.current_event.request_context
    stage = context.stage
    if stage and stage != "$default" and (context.path or "").startswith(f"/{stage}/"):
        return f"/{stage}"
    return ""


@router.get("/v1/openapi.json", include_in_schema=False)
def openapi_document():
    return Response(status_code=200, content_type="application/json", body=openapi_json(_base_path()))


@router.get("/v1/docs", include_in_schema=False)
def docs_page():
    from aws_lambda_powertools.event_handler.openapi import swagger_ui
    from aws_lambda_powertools.event_handler.openapi.swagger_ui.html import generate_swagger_html

    assets = FilePath(swagger_ui.__file__).parent
    html = generate_swagger_html(
        openapi_json(_base_path()).replace("</", "<\\/"),
        (assets / "swagger-ui-bundle.min.js").read_text(encoding="utf-8"),
        (assets / "swagger-ui.min.css").read_text(encoding="utf-8"),
        "",
        None,
    )
    return Response(status_code=200, content_type="text/html", body=html)
