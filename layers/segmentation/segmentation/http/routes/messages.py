"""Messages: create, list, read, send, put live, pause, resume, delete, and their deliveries
(API.md, Messages)."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from aws_lambda_powertools.event_handler.router import APIGatewayRouter
from pydantic import AfterValidator

from segmentation import clock
from segmentation.http.auth import ADMINS, READERS, WRITERS, allow
from segmentation.http.models import DeliveryPage, Message, MessagePage, MessagePreview
from segmentation.http.pagination import DEFAULT_LIMIT, MAX_LIMIT
from segmentation.http.presenters import documented, link, no_content, respond
from segmentation.http.urls import unsubscribe_base_url
from segmentation.messaging import service
from segmentation.messaging.model import MessageCreate, PreviewRequest
from segmentation.values import one_line

router = APIGatewayRouter()
MessageId = Annotated[
    str, AfterValidator(one_line), Path(min_length=1, max_length=64, description="The message id (msg_...)")
]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]
Cursor = Annotated[str | None, Query(max_length=2048)]
TAGS = ["Messages"]
MESSAGE_LINKS = {
    name: link(operation, "message_id", "/id")
    for name, operation in (
        ("GetMessage", "get_message_v1_messages__message_id__get"),
        ("SendMessage", "send_message_v1_messages__message_id__send_post"),
        ("PutMessageLive", "put_live_v1_messages__message_id__live_post"),
        ("PauseMessage", "pause_v1_messages__message_id__pause_post"),
        ("ResumeMessage", "resume_v1_messages__message_id__resume_post"),
        ("ListDeliveries", "list_deliveries_v1_messages__message_id__deliveries_get"),
        ("DeleteMessage", "delete_message_v1_messages__message_id__delete"),
    )
}
# Route functions carry no return annotation: Powertools would validate the response against it
# (a bare `Response` cannot be validated at all). They all return a Response made by `respond`.


@router.post(
    "/v1/messages",
    tags=TAGS,
    summary="Create a message (state draft)",
    description="subject and body are Liquid templates over `user` and `company`; a template that does "
    "not parse is a 422 naming the field, and one that can be seen to exceed the render budget a 422 "
    "`template_budget` naming it.",
    responses=documented(201, Message, "Created", 400, 413, 422, links=MESSAGE_LINKS),
)
@allow(*WRITERS)
def create_message(body: MessageCreate):
    return respond(service.create(body, clock.now()).to_json(), 201)


@router.post(
    "/v1/messages/preview",
    tags=TAGS,
    summary="Render a subject and body for one user (nothing is sent or recorded)",
    description="The sender's rendering and limits. A template that does not parse is a 422 naming the "
    "field; one that exceeds the render budget while rendering a 422 `template_budget` naming it; an "
    "unknown user a 404. In an email, `{{ unsubscribe_url }}` shows where links point, with the token "
    "`preview` (each email gets its own token when it is sent).",
    responses=documented(200, MessagePreview, "The rendered subject and body", 400, 404, 413, 422),
)
@allow(*WRITERS)
def preview_message(body: PreviewRequest):
    rendered = service.preview(body, unsubscribe_base_url())
    return respond({"subject": rendered.subject, "body": rendered.text})


@router.get(
    "/v1/messages",
    tags=TAGS,
    summary="Messages, newest first",
    responses=documented(200, MessagePage, "A page"),
)
@allow(*READERS)
def list_messages(limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None):
    found, next_cursor = service.list_messages(limit, cursor)
    return respond({"data": [m.to_json() for m in found], "next_cursor": next_cursor})


@router.get(
    "/v1/messages/<message_id>", tags=TAGS, summary="A message", responses=documented(200, Message, "It", 404)
)
@allow(*READERS)
def get_message(message_id: MessageId):
    return respond(service.require(message_id).to_json())


@router.post(
    "/v1/messages/<message_id>/send",
    tags=TAGS,
    summary="Send a manual message to its audience of this instant",
    responses=documented(202, Message, "Accepted: state sent; deliveries go out shortly", 404, 409),
)
@allow(*WRITERS)
def send_message(message_id: MessageId):
    return respond(service.send(message_id, clock.now()).to_json(), 202)


@router.post(
    "/v1/messages/<message_id>/live",
    tags=TAGS,
    summary="Put an auto message live",
    responses=documented(200, Message, "Live", 404, 409),
)
@allow(*WRITERS)
def put_live(message_id: MessageId):
    return respond(service.put_live(message_id, clock.now()).to_json())


@router.post(
    "/v1/messages/<message_id>/pause",
    tags=TAGS,
    summary="Pause an auto message",
    responses=documented(200, Message, "Paused", 404, 409),
)
@allow(*WRITERS)
def pause(message_id: MessageId):
    return respond(service.pause(message_id, clock.now()).to_json())


@router.post(
    "/v1/messages/<message_id>/resume",
    tags=TAGS,
    summary="Resume a message that SES's refusal paused",
    description="When SES refused to send for the whole account, the message was paused with a "
    "`paused_reason` and its deliveries stayed queued. Once the cause is fixed, this sends what waits "
    "(an auto message goes back to live). 409 when it is not paused by SES.",
    responses=documented(202, Message, "Accepted: what waits is queued again", 404, 409),
)
@allow(*WRITERS)
def resume(message_id: MessageId):
    return respond(service.resume(message_id, clock.now()).to_json(), 202)


@router.delete(
    "/v1/messages/<message_id>",
    tags=TAGS,
    summary="Delete a message",
    responses=documented(204, None, "Gone", 404),
)
@allow(*ADMINS)
def delete_message(message_id: MessageId):
    service.delete(message_id, clock.now())
    return no_content()


@router.get(
    "/v1/messages/<message_id>/deliveries",
    tags=TAGS,
    summary="A message's deliveries",
    responses=documented(200, DeliveryPage, "A page", 400, 404, 422),
)
@allow(*READERS)
def list_deliveries(message_id: MessageId, limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None):
    data, next_cursor = service.list_deliveries(message_id, limit, cursor)
    return respond({"data": data, "next_cursor": next_cursor})
