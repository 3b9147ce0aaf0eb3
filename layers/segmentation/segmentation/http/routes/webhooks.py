"""Webhooks (admin): endpoints that receive membership changes, signed by the Standard Webhooks
specification (API.md, Changes and webhooks; docs/changes.md)."""

from __future__ import annotations

from typing import Annotated, Literal

from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from aws_lambda_powertools.event_handler.router import APIGatewayRouter
from pydantic import AfterValidator, ConfigDict, Field, StringConstraints

from segmentation import clock
from segmentation.changes import addresses
from segmentation.changes import webhooks as service
from segmentation.http.auth import ADMINS, allow
from segmentation.http.models import RequestBody, Shape
from segmentation.http.presenters import documented, link, no_content, respond
from segmentation.values import one_line

# Route functions have no return annotation on purpose: Powertools would validate the Response against it.
router = APIGatewayRouter()

WebhookId = Annotated[str, AfterValidator(one_line), Path(min_length=1, max_length=64, description="wh_...")]
SegmentRef = Annotated[str, StringConstraints(min_length=1, max_length=255), AfterValidator(one_line)]
Url = Annotated[
    str, StringConstraints(min_length=1, max_length=addresses.MAX_URL_LENGTH), AfterValidator(one_line)
]
Description = Annotated[str, StringConstraints(max_length=255), AfterValidator(one_line)]

WEBHOOK_LINKS = {
    name: link(operation, "webhook_id", "/id")
    for name, operation in (
        ("GetWebhook", "get_webhook_v1_webhooks__webhook_id__get"),
        ("DeleteWebhook", "delete_webhook_v1_webhooks__webhook_id__delete"),
        ("RotateSecret", "rotate_secret_v1_webhooks__webhook_id__rotate_secret_post"),
        ("ListAttempts", "webhook_deliveries_v1_webhooks__webhook_id__deliveries_get"),
    )
}


class WebhookCreate(RequestBody):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "url": "https://hooks.example.com/segments",
                    "segment_ids": ["new"],
                    "description": "CRM sync",
                }
            ]
        }
    )

    url: Url = Field(description="https, to a public address")
    segment_ids: list[SegmentRef] | None = Field(
        default=None,
        min_length=1,
        max_length=100,
        description="Only these segments' changes; left out: every segment",
    )
    description: Description | None = None


class WebhookState(RequestBody):
    model_config = ConfigDict(json_schema_extra={"examples": [{"state": "enabled"}]})

    state: Literal["enabled", "disabled"]


class Webhook(Shape):
    id: str
    url: str
    segment_ids: list[str] | None = Field(description="null: every segment")
    description: str | None
    state: Literal["enabled", "disabled"]
    disabled_reason: str | None
    created_at: str
    updated_at: str


class WebhookWithSecret(Webhook):
    secret: str = Field(description="whsec_...: verifies the signatures; shown on creation and rotation only")


class WebhookPage(Shape):
    data: list[Webhook]
    next_cursor: str | None


class Attempt(Shape):
    id: str
    webhook_id_header: str = Field(description="The delivery's webhook-id: the same for each of its attempts")
    at: str
    status_code: int | None = Field(description="null: no answer (timeout, refused, not a public address)")
    duration_ms: int
    changes: int = Field(description="How many changes the POST carried")
    outcome: Literal["delivered", "failed"]
    error: str | None


class AttemptPage(Shape):
    data: list[Attempt]
    next_cursor: str | None


@router.post(
    "/v1/webhooks",
    tags=["Webhooks"],
    summary="Create a webhook (admin)",
    description="Its secret is shown here and on rotation only. The URL must be https to a public "
    "address (422 url_not_allowed). Only changes made from now on are sent. At most 50 webhooks.",
    responses=documented(
        201, WebhookWithSecret, "The new webhook, with its secret", 400, 413, 422, links=WEBHOOK_LINKS
    ),
)
@allow(*ADMINS)
def create_webhook(body: WebhookCreate):
    hook = service.create(body.url, body.segment_ids, body.description, clock.now())
    return respond(service.webhook_json(hook, with_secret=True), 201)


@router.get(
    "/v1/webhooks",
    tags=["Webhooks"],
    summary="List the webhooks (admin), oldest first",
    responses=documented(200, WebhookPage, "A page of webhooks"),
)
@allow(*ADMINS)
def list_webhooks(
    limit: Annotated[int, Query(ge=1, le=100)] = 50, cursor: Annotated[str | None, Query()] = None
):
    return respond(service.page(limit, cursor or None))


@router.get(
    "/v1/webhooks/<webhook_id>",
    tags=["Webhooks"],
    summary="A webhook (admin)",
    responses=documented(200, Webhook, "The webhook", 404),
)
@allow(*ADMINS)
def get_webhook(webhook_id: WebhookId):
    return respond(service.webhook_json(service.require(webhook_id)))


@router.put(
    "/v1/webhooks/<webhook_id>",
    tags=["Webhooks"],
    summary="Enable (or disable) a webhook (admin)",
    description='`{"state": "enabled"}` turns a disabled webhook back on and clears its disabled_reason; '
    "changes made while it was disabled are not sent.",
    responses=documented(200, Webhook, "The webhook", 400, 404, 413),
)
@allow(*ADMINS)
def update_webhook(webhook_id: WebhookId, body: WebhookState):
    return respond(service.webhook_json(service.set_state(webhook_id, body.state, clock.now())))


@router.delete(
    "/v1/webhooks/<webhook_id>",
    tags=["Webhooks"],
    summary="Delete a webhook (admin)",
    responses=documented(204, None, "Deleted", 404),
)
@allow(*ADMINS)
def delete_webhook(webhook_id: WebhookId):
    service.delete(webhook_id)
    return no_content()


@router.post(
    "/v1/webhooks/<webhook_id>/rotate_secret",
    tags=["Webhooks"],
    summary="Give a webhook a new secret (admin); the old one signs nothing more",
    responses=documented(200, WebhookWithSecret, "The webhook, with its new secret", 404),
)
@allow(*ADMINS)
def rotate_secret(webhook_id: WebhookId):
    return respond(service.webhook_json(service.rotate_secret(webhook_id, clock.now()), with_secret=True))


@router.get(
    "/v1/webhooks/<webhook_id>/deliveries",
    tags=["Webhooks"],
    summary="A webhook's delivery attempts, newest first (admin)",
    responses=documented(200, AttemptPage, "A page of attempts", 404),
)
@allow(*ADMINS)
def webhook_deliveries(
    webhook_id: WebhookId,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    cursor: Annotated[str | None, Query()] = None,
):
    return respond(service.attempts(webhook_id, limit, cursor or None))
