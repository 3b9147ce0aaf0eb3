"""API keys (admin): create (the key is shown once), list without keys, revoke.
The caller's own key (any key): GET /v1/me."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from aws_lambda_powertools.event_handler.router import APIGatewayRouter
from pydantic import AfterValidator

from segmentation import clock
from segmentation.auth import access
from segmentation.auth.keys import KEY_ROLES
from segmentation.http.auth import ADMINS, allow, current_principal
from segmentation.http.models import ApiKeyCreate, ApiKeyCreated, ApiKeyPage, Me
from segmentation.http.pagination import DEFAULT_LIMIT, MAX_LIMIT
from segmentation.http.presenters import api_key_json, documented, link, no_content, respond
from segmentation.values import one_line

# Route functions have no return annotation on purpose: Powertools would validate the Response against it.
router = APIGatewayRouter()


@router.post(
    "/v1/api_keys",
    tags=["API keys"],
    summary="Create an API key (shown once)",
    responses=documented(
        201,
        ApiKeyCreated,
        "The new key",
        400,
        413,
        422,
        links={"RevokeApiKey": link("revoke_api_key_v1_api_keys__key_id__delete", "key_id", "/id")},
    ),
)
@allow(*ADMINS)
def create_api_key(body: ApiKeyCreate):
    key, raw_key = access.create_key(body.role, body.name, clock.now())
    return respond({**api_key_json(key), "key": raw_key}, 201)


@router.get(
    "/v1/api_keys",
    tags=["API keys"],
    summary="List API keys (without the keys)",
    responses=documented(200, ApiKeyPage, "A page of keys", 422),
)
@allow(*ADMINS)
def list_api_keys(
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query()] = None,
):
    keys, next_cursor = access.list_keys(limit, cursor or None)
    return respond({"data": [api_key_json(key) for key in keys], "next_cursor": next_cursor})


@router.delete(
    "/v1/api_keys/<key_id>",
    tags=["API keys"],
    summary="Revoke an API key",
    responses=documented(204, None, "Revoked", 404),
)
@allow(*ADMINS)
def revoke_api_key(key_id: Annotated[str, AfterValidator(one_line), Path(min_length=1, max_length=255)]):
    access.revoke_key(key_id, clock.now())
    return no_content()


@router.get(
    "/v1/me",
    tags=["API keys"],
    summary="The calling key: its id, role and name",
    responses=documented(200, Me, "What the calling key may do"),
)
@allow(*KEY_ROLES)
def get_me():
    caller = current_principal()
    return respond({"key_id": caller.key_id, "role": caller.role, "name": caller.name or None})
