"""Users: upsert, read, delete, logins and a user's in-app messages (API.md, Users)."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Body, Path
from aws_lambda_powertools.event_handler.router import APIGatewayRouter
from pydantic import AfterValidator

from segmentation import clock
from segmentation.http.auth import INGESTERS, READERS, USER_READERS, allow, current_principal
from segmentation.http.models import (
    Accepted,
    EventBody,
    EventSummaryPage,
    InAppMessagePage,
    Login,
    LoginBody,
    User,
    UserUpsert,
)
from segmentation.http.presenters import documented, link, message_json, no_content, respond, user_json
from segmentation.people import events, users
from segmentation.values import one_line

# Route functions have no return annotation on purpose: Powertools would validate the Response against it.
router = APIGatewayRouter()
# What a created or updated user opens (OpenAPI links; operation ids as Powertools makes them).
USER_LINKS = {
    name: link(operation, "user_id", "/user_id")
    for name, operation in (
        ("GetUser", "get_user_v1_users__user_id__get"),
        ("DeleteUser", "delete_user_v1_users__user_id__delete"),
        ("RecordLogin", "record_login_v1_users__user_id__logins_post"),
        ("ListUserMessages", "user_messages_v1_users__user_id__messages_get"),
        ("RecordEvent", "record_event_v1_users__user_id__events_post"),
        ("ListEvents", "list_events_v1_users__user_id__events_get"),
    )
}
UserId = Annotated[
    str, AfterValidator(one_line), Path(min_length=1, max_length=255, description="The app's id of the user")
]


@router.post(
    "/v1/users",
    tags=["Users"],
    summary="Create or update a user",
    description="Only the fields sent change; custom_attributes merge by name and null removes one.",
    responses={
        **documented(200, User, "Updated", 400, 413, 422, links=USER_LINKS),
        **documented(201, User, "Created", links=USER_LINKS),
    },
)
@allow(*INGESTERS)
def upsert_user(body: UserUpsert):
    now = clock.now()
    fields = body.sent_fields("user_id", "custom_attributes")
    item, created = users.upsert_user(body.user_id, fields, body.custom_attributes, now)
    return respond(user_json(item, users.segments_of(item, now)), 201 if created else 200)


@router.get(
    "/v1/users/<user_id>",
    tags=["Users"],
    summary="A user, with the segments it is in now",
    responses=documented(200, User, "The user", 404),
)
@allow(*USER_READERS)
def get_user(user_id: UserId):
    item = users.get_user(user_id)
    return respond(user_json(item, users.segments_of(item, clock.now())))


@router.delete(
    "/v1/users/<user_id>",
    tags=["Users"],
    summary="Delete a user",
    responses=documented(204, None, "Deleted", 404),
)
@allow(*INGESTERS)
def delete_user(user_id: UserId):
    users.delete_user(user_id)
    return no_content()


@router.post(
    "/v1/users/<user_id>/logins",
    tags=["Users"],
    summary="Record a login",
    description="Also open to the user itself with X-User-Hash. Returns the user, its segments now "
    "and the in-app messages delivered to it.",
    responses=documented(200, Login, "The user after the login", 400, 404, 413, 422),
)
@allow(*INGESTERS, identity=True)
def record_login(user_id: UserId, body: Annotated[LoginBody | None, Body()] = None):
    now = clock.now()
    item = users.record_login(user_id, body.at if body else None, now)
    segments = users.segments_of(item, now)
    messages = [message_json(message) for message in users.messages_of(user_id)]
    return respond({"user": user_json(item, segments), "segments": segments, "messages": messages})


@router.get(
    "/v1/users/<user_id>/messages",
    tags=["Users"],
    summary="The in-app messages delivered to a user, newest first",
    description="Also open to the user itself with X-User-Hash.",
    responses=documented(200, InAppMessagePage, "The messages", 404),
)
@allow(*READERS, identity=True)
def user_messages(user_id: UserId):
    messages = [message_json(message) for message in users.messages_of(user_id)]
    return respond({"data": messages, "next_cursor": None})


@router.post(
    "/v1/users/<user_id>/events",
    tags=["Users"],
    summary="Record an event the user did",
    description="Also open to the user itself with X-User-Hash, for event names already recorded (a new "
    "name needs a key: 403). An event with an `id` already recorded for this user counts once. 422 past "
    "120 event names per workspace or more than 5 minutes ahead. 429 (with Retry-After) when other "
    "writes of the same user keep winning the race: retry after the wait.",
    responses=documented(202, Accepted, "Accepted", 400, 404, 413, 422),
)
@allow(*INGESTERS, identity=True)
def record_event(user_id: UserId, body: EventBody):
    by_key = current_principal().role != "identity"
    events.record(user_id, body.event_name, body.created_at, body.id, clock.now(), may_add_name=by_key)
    return respond({"accepted": True}, 202)


@router.get(
    "/v1/users/<user_id>/events",
    tags=["Users"],
    summary="The user's events: count, first and last time of each",
    responses=documented(200, EventSummaryPage, "The events", 404),
)
@allow(*USER_READERS)
def list_events(user_id: UserId):
    return respond({"data": events.summaries(user_id), "next_cursor": None})
