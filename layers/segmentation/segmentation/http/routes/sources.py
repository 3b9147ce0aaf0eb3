"""Sources: the Segment HTTP Tracking API (API.md, "Sources: Segment-compatible ingestion").

`/v1/batch` and the six single-message routes. No authorizer: each request's key, body encoding
and size are read by http.segment_request before anything else; every message then stands alone
(people.segment_messages, people.segment_ingest) and the answer is always 200 with what was
accepted and what was rejected, each rejection naming its message's index.
"""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Body
from aws_lambda_powertools.event_handler.router import APIGatewayRouter
from pydantic import BaseModel, ConfigDict, WithJsonSchema

from segmentation import clock
from segmentation.http import segment_request
from segmentation.http.models import ErrorBody
from segmentation.http.presenters import respond
from segmentation.http.resolver import reads_own_request
from segmentation.people import segment_ingest, segment_messages
from segmentation.people.segment_messages import MAX_BATCH_MESSAGES, MESSAGE_TYPES

# Route functions have no return annotation on purpose: Powertools would validate the Response against it.
router = APIGatewayRouter()
TAGS = ["Sources (Segment)"]
# Where the key may be: a Bearer token or Basic auth (the `apiKey` and `writeKeyBasic` schemes),
# or `writeKey` in the body (no scheme: the empty alternative).
SECURITY: list[dict[str, list[str]]] = [{"apiKey": []}, {"writeKeyBasic": []}, {}]

_TIME = {"type": "string", "format": "date-time"}
MESSAGE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "A Segment message (spec: identify, track, group, page, screen, alias). Any other "
    "field is accepted and ignored; a message over 32 KB is rejected alone.",
    "properties": {
        "type": {"type": "string", "enum": list(MESSAGE_TYPES), "description": "On /v1/batch"},
        "userId": {"type": "string", "maxLength": 255},
        "anonymousId": {"type": "string", "description": "Not kept: a message needs a userId"},
        "messageId": {"type": "string", "maxLength": 255, "description": "Makes the message idempotent"},
        "timestamp": _TIME,
        "originalTimestamp": {**_TIME, "description": "Corrected by receivedAt - sentAt"},
        "sentAt": _TIME,
        "traits": {"type": "object", "description": "identify: the user's; group: the company's"},
        "context": {"type": "object", "description": "context.traits: traits of an identify"},
        "event": {"type": "string", "description": "track: the event's name"},
        "properties": {"type": "object", "description": "Up to 10 scalar ones become the metadata"},
        "name": {"type": "string", "description": "page, screen: kept in the event's metadata"},
        "groupId": {"type": "string", "maxLength": 255, "description": "group: the company's id"},
        "previousId": {"type": "string", "description": "alias: accepted, does nothing"},
        "writeKey": {"type": "string", "description": "The key, when no Authorization header is sent"},
    },
}
BATCH_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["batch"],
    "properties": {
        "batch": {"type": "array", "maxItems": MAX_BATCH_MESSAGES, "items": MESSAGE_SCHEMA},
        "sentAt": _TIME,
        "context": {"type": "object", "description": "Shared by every message (theirs win)"},
        "writeKey": MESSAGE_SCHEMA["properties"]["writeKey"],
    },
}
SingleMessage = Annotated[
    dict[str, Any],
    Body(description="One message; its type is the route's."),
    WithJsonSchema(MESSAGE_SCHEMA),
]
BatchBody = Annotated[
    dict[str, Any],
    Body(description=f"Up to {MAX_BATCH_MESSAGES} messages, 500 KB uncompressed."),
    WithJsonSchema(BATCH_SCHEMA),
]


class Rejected(BaseModel):
    model_config = ConfigDict(defer_build=True)
    index: int
    code: str
    message: str


class SegmentAnswer(BaseModel):
    model_config = ConfigDict(defer_build=True)
    success: bool
    accepted: int
    rejected: list[Rejected]


_ERRORS = {
    400: "The body is not JSON (or its gzip is broken), or `batch` is not a list",
    401: "No write key, or an unknown or revoked one",
    403: "The key is neither an ingest nor an admin key",
    413: f"The uncompressed body is over 500 KB, or a batch holds more than {MAX_BATCH_MESSAGES} "
    "messages: nothing was kept",
    422: "Not answered by these routes (every message stands alone)",
    429: "Too many requests (rate_limited; wait Retry-After seconds), or the service is busy "
    "(throttled; retry: message ids make it safe)",
}
RESPONSES: dict[int, Any] = {
    200: {
        "description": "Each message accepted or rejected (with its index)",
        "content": {"application/json": {"model": SegmentAnswer}},
    },
    **{
        status: {"description": text, "content": {"application/json": {"model": ErrorBody}}}
        for status, text in _ERRORS.items()
    },
}
RESPONSES[429]["headers"] = {"Retry-After": {"schema": {"type": "integer", "minimum": 1}}}


def _answer(body: dict[str, Any], route_type: str | None):
    now = clock.now()
    read = segment_messages.read_body(body, route_type, now)
    return respond(segment_ingest.ingest(read, now).as_json())


def _doc(kind: str) -> str:
    return (
        f"Segment's `{kind}` (HTTP Tracking API). The write key is an ingest or admin key: "
        "`writeKey` in the body, HTTP Basic (the key as user name, no password) or a Bearer token. "
        "The body may be gzip (`Content-Encoding: gzip`)."
    )


@router.post(
    "/v1/batch",
    tags=TAGS,
    summary="Segment: a batch of messages",
    description=_doc("batch"),
    responses=RESPONSES,
    security=SECURITY,
)
@reads_own_request(segment_request.read)
def batch(body: BatchBody):
    return _answer(body, None)


@router.post(
    "/v1/identify",
    tags=TAGS,
    summary="Segment: identify (upsert a user)",
    description=_doc("identify"),
    responses=RESPONSES,
    security=SECURITY,
)
@reads_own_request(segment_request.read)
def identify(body: SingleMessage):
    return _answer(body, "identify")


@router.post(
    "/v1/track",
    tags=TAGS,
    summary="Segment: track (record an event)",
    description=_doc("track"),
    responses=RESPONSES,
    security=SECURITY,
)
@reads_own_request(segment_request.read)
def track(body: SingleMessage):
    return _answer(body, "track")


@router.post(
    "/v1/group",
    tags=TAGS,
    summary="Segment: group (upsert a company, link the user)",
    description=_doc("group"),
    responses=RESPONSES,
    security=SECURITY,
)
@reads_own_request(segment_request.read)
def group(body: SingleMessage):
    return _answer(body, "group")


@router.post(
    "/v1/page",
    tags=TAGS,
    summary="Segment: page (the event page_viewed)",
    description=_doc("page"),
    responses=RESPONSES,
    security=SECURITY,
)
@reads_own_request(segment_request.read)
def page(body: SingleMessage):
    return _answer(body, "page")


@router.post(
    "/v1/screen",
    tags=TAGS,
    summary="Segment: screen (the event screen_viewed)",
    description=_doc("screen"),
    responses=RESPONSES,
    security=SECURITY,
)
@reads_own_request(segment_request.read)
def screen(body: SingleMessage):
    return _answer(body, "screen")


@router.post(
    "/v1/alias",
    tags=TAGS,
    summary="Segment: alias (accepted, does nothing)",
    description=_doc("alias"),
    responses=RESPONSES,
    security=SECURITY,
)
@reads_own_request(segment_request.read)
def alias(body: SingleMessage):
    return _answer(body, "alias")
