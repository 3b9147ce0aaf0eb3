"""Segment's HTTP Tracking API messages, read into the changes they make (API.md, "Sources:
Segment-compatible ingestion"). Pure: no AWS, no HTTP; segment_ingest.py writes the changes.

Each message stands alone: one that breaks a rule becomes a `Rejection` (its index, a code, a
sentence) and the others go on. Only the request as a whole can fail here: a body whose `batch`
is not a list (`errors.Malformed`, 400) or holds more than MAX_BATCH_MESSAGES (413).
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from segmentation.engine.fields import CUSTOM_ATTRIBUTE_NAME
from segmentation.errors import Malformed, PayloadTooLarge
from segmentation.values import MAX_STRING_LENGTH, epoch_millis, one_line, parse_timestamp, to_number

# Segment's limits (on the uncompressed body; a message's size is its compact JSON in UTF-8).
MAX_BODY_BYTES = 500 * 1024
MAX_MESSAGE_BYTES = 32 * 1024
MAX_BATCH_MESSAGES = 2500
MESSAGE_TYPES = ("identify", "track", "group", "page", "screen", "alias")
# An event may be stamped a little ahead of our clock, not more (as POST /v1/users/{id}/events).
MAX_AHEAD_SECONDS = 300
MAX_METADATA_KEYS = 10
PAGE_EVENTS = {"page": "page_viewed", "screen": "screen_viewed"}

_OUTSIDE_EVENT_NAME = re.compile(r"[^A-Za-z0-9_.-]+")
_EVENT_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,63}")
# Traits that map to standard user fields; every other scalar trait is a custom attribute.
_USER_TRAITS = {"email": "email", "name": "name", "phone": "phone"}
_USER_TRAITS_CONSUMED = {
    "email",
    "name",
    "firstName",
    "lastName",
    "phone",
    "createdAt",
    "unsubscribed_from_emails",
}
_COMPANY_TEXT_TRAITS = ("name", "plan", "industry", "website")
_COMPANY_NUMBER_TRAITS = ("monthly_spend", "size")
_COMPANY_TRAITS_CONSUMED = {*_COMPANY_TEXT_TRAITS, *_COMPANY_NUMBER_TRAITS, "createdAt"}


@dataclass(frozen=True)
class Rejection:
    index: int
    code: str
    message: str

    def as_json(self) -> dict[str, Any]:
        return {"index": self.index, "code": self.code, "message": self.message}


class _Rejected(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Traits:
    """Standard fields (None removes) and custom attributes (as sent; typed later) of a record."""

    fields: dict[str, Any] = field(default_factory=dict)
    custom: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Event:
    name: str  # as API.md's event names, lower-cased (names compare case-insensitively)
    at: Decimal  # epoch seconds: Segment's time of the message
    metadata: dict[str, Any] = field(default_factory=dict)  # checked, not stored (as the REST route)


@dataclass(frozen=True)
class Message:
    """One accepted message: what it changes for `user_id` (none for an alias)."""

    index: int
    kind: str
    user_id: str | None = None
    message_id: str | None = None
    user: Traits | None = None  # identify
    event: Event | None = None  # track, page, screen
    company_id: str | None = None  # group: link the user to this company...
    company: Traits | None = None  # ...and upsert it with these traits


@dataclass
class Read:
    messages: list[Message] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)


def read_body(body: Mapping[str, Any], route_type: str | None, received_at: float) -> Read:
    """The messages of a request body: `/v1/batch` (route_type None) takes `{"batch": [...]}`,
    the other routes one message whose type is the route's."""
    raw: Any
    shared_context: dict[str, Any]
    sent_at: Any
    if route_type is None:
        raw = body.get("batch")
        if not isinstance(raw, list):
            raise Malformed(
                'A batch body is {"batch": [message, ...]}: `batch` must be a list.',
                [{"path": "batch", "message": "must be a list of messages"}],
                code="malformed_batch",
            )
        if len(raw) > MAX_BATCH_MESSAGES:
            raise PayloadTooLarge(
                f"A batch holds at most {MAX_BATCH_MESSAGES} messages; this one has {len(raw)}. "
                "Nothing was kept: send it in smaller batches."
            )
        shared_context = _object(body.get("context"))
        sent_at = body.get("sentAt")
    else:
        raw, shared_context, sent_at = [body], {}, None
    read = Read()
    for index, message in enumerate(raw):
        try:
            read.messages.append(_message(index, message, route_type, shared_context, sent_at, received_at))
        except _Rejected as rejected:
            read.rejected.append(Rejection(index, rejected.code, rejected.message))
    return read


def message_size(message: Any) -> int:
    return len(json.dumps(message, separators=(",", ":"), ensure_ascii=False, default=str).encode("utf-8"))


def _message(
    index: int,
    message: Any,
    route_type: str | None,
    shared_context: Mapping[str, Any],
    batch_sent_at: Any,
    received_at: float,
) -> Message:
    if not isinstance(message, dict):
        raise _Rejected("invalid_message", "A message must be a JSON object.")
    size = message_size(message)
    if size > MAX_MESSAGE_BYTES:
        raise _Rejected(
            "message_too_large", f"The message is {size} bytes; a message holds at most {MAX_MESSAGE_BYTES}."
        )
    kind = route_type or message.get("type")
    if kind not in MESSAGE_TYPES:
        raise _Rejected("invalid_type", f"`type` must be one of {', '.join(MESSAGE_TYPES)}.")
    message_id = _optional_id(message.get("messageId"), "messageId")
    if kind == "alias":
        return Message(index, kind, message_id=message_id)
    user_id = _optional_id(message.get("userId"), "userId")
    if user_id is None:
        raise _Rejected(
            "no_user_id",
            "The message has no userId: anonymous-only messages are not kept (users need an id).",
        )
    context = {**shared_context, **(message["context"] if isinstance(message.get("context"), dict) else {})}
    base = Message(index, kind, user_id=user_id, message_id=message_id)
    if kind == "identify":
        traits = {**_object(context.get("traits")), **_object(message.get("traits"))}
        return dataclasses.replace(base, user=_user_traits(traits))
    if kind == "group":
        company_id = _optional_id(message.get("groupId"), "groupId")
        if company_id is None:
            raise _Rejected("no_group_id", "A group message needs a groupId (the company's id).")
        return dataclasses.replace(
            base, company_id=company_id, company=_company_traits(_object(message.get("traits")))
        )
    sent_at = message.get("sentAt")
    at = _time_of(message, batch_sent_at if sent_at is None else sent_at, received_at)
    properties = _object(message.get("properties"))
    if kind == "track":
        name = _event_name(message.get("event"))
        return dataclasses.replace(base, event=Event(name, at, _metadata(properties)))
    page_name = message.get("name")
    named = {"name": page_name} if isinstance(page_name, str) and page_name else {}
    return dataclasses.replace(base, event=Event(PAGE_EVENTS[kind], at, _metadata({**named, **properties})))


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _optional_id(value: Any, name: str) -> str | None:
    """An id as Segment's libraries send it (a string; a number is taken as its text); None when absent."""
    if value is None or value == "":
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise _Rejected("invalid_message", f"`{name}` must be a string.")
    if len(value) > MAX_STRING_LENGTH:
        raise _Rejected("invalid_message", f"`{name}` holds at most {MAX_STRING_LENGTH} characters.")
    try:
        return one_line(value)
    except ValueError as error:
        raise _Rejected("invalid_message", f"`{name}` {error}.") from error


def _time_of(message: Mapping[str, Any], sent_at: Any, received_at: float) -> Decimal:
    """Segment's time: `timestamp`; else `originalTimestamp` moved by the client's clock error
    (receivedAt - sentAt); else when it arrived. More than 5 minutes ahead is rejected."""
    try:
        if message.get("timestamp") is not None:
            at = parse_timestamp(message["timestamp"])
        elif message.get("originalTimestamp") is not None:
            at = parse_timestamp(message["originalTimestamp"])
            if sent_at is not None:
                at = to_number(at + epoch_millis(received_at) - parse_timestamp(sent_at))
        else:
            at = epoch_millis(received_at)
    except ValueError as error:
        raise _Rejected("invalid_timestamp", f"The message's time is not a timestamp: {error}.") from error
    if at > Decimal(str(received_at + MAX_AHEAD_SECONDS)):
        raise _Rejected("in_the_future", "The message's time is more than 5 minutes after now.")
    return at


def _event_name(event: Any) -> str:
    if not isinstance(event, str) or not event:
        raise _Rejected("invalid_message", "A track message needs `event`, the event's name.")
    name = _OUTSIDE_EVENT_NAME.sub("_", event)
    if not _EVENT_NAME.fullmatch(name):
        raise _Rejected(
            "invalid_event_name",
            f"The event name {name!r} must start with a letter and hold at most 64 characters "
            "(letters, digits, _ . -).",
        )
    return name.lower()


def _metadata(properties: Mapping[str, Any]) -> dict[str, Any]:
    """Up to 10 scalar properties (strings up to 255 characters, numbers DynamoDB holds,
    booleans); the rest are dropped."""
    kept: dict[str, Any] = {}
    for key, value in properties.items():
        if len(kept) == MAX_METADATA_KEYS:
            break
        if isinstance(value, bool) or (isinstance(value, str) and len(value) <= MAX_STRING_LENGTH):
            kept[key] = value
        elif isinstance(value, int | float | Decimal):
            try:
                kept[key] = to_number(value)
            except ValueError:
                continue
    return kept


def _user_traits(traits: Mapping[str, Any]) -> Traits:
    fields: dict[str, Any] = {}
    for trait, field_name in _USER_TRAITS.items():
        if trait in traits:
            fields[field_name] = _text(traits[trait], trait)
    if "name" not in traits and ("firstName" in traits or "lastName" in traits):
        parts = [_text(traits.get(part), part) for part in ("firstName", "lastName")]
        fields["name"] = " ".join(part for part in parts if part) or None
    if "createdAt" in traits:
        fields["signed_up_at"] = _timestamp(traits["createdAt"], "createdAt")
    if isinstance(traits.get("unsubscribed_from_emails"), bool):
        fields["unsubscribed_from_emails"] = traits["unsubscribed_from_emails"]
    elif traits.get("unsubscribed_from_emails") is not None:
        raise _Rejected("invalid_traits", "The trait unsubscribed_from_emails must be true or false.")
    return Traits(fields, _custom(traits, _USER_TRAITS_CONSUMED))


def _company_traits(traits: Mapping[str, Any]) -> Traits:
    fields: dict[str, Any] = {}
    for trait in _COMPANY_TEXT_TRAITS:
        if trait in traits:
            fields[trait] = _text(traits[trait], trait)
    for trait in _COMPANY_NUMBER_TRAITS:
        if traits.get(trait) is not None:
            try:
                fields[trait] = to_number(traits[trait])
            except ValueError as error:
                raise _Rejected("invalid_traits", f"The trait {trait} {error}.") from error
        elif trait in traits:
            fields[trait] = None
    if "createdAt" in traits:
        fields["remote_created_at"] = _timestamp(traits["createdAt"], "createdAt")
    return Traits(fields, _custom(traits, _COMPANY_TRAITS_CONSUMED))


def _text(value: Any, trait: str) -> str | None:
    """A standard text field: a string up to 255 characters (a number is taken as its text);
    null removes it."""
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise _Rejected("invalid_traits", f"The trait {trait} must be a string.")
    if len(value) > MAX_STRING_LENGTH:
        raise _Rejected("invalid_traits", f"The trait {trait} holds at most {MAX_STRING_LENGTH} characters.")
    try:
        return one_line(value)
    except ValueError as error:
        raise _Rejected("invalid_traits", f"The trait {trait} {error}.") from error


def _timestamp(value: Any, trait: str) -> Decimal | None:
    if value is None:
        return None
    try:
        return parse_timestamp(value)
    except ValueError as error:
        raise _Rejected("invalid_traits", f"The trait {trait} is not a timestamp: {error}.") from error


def _custom(traits: Mapping[str, Any], consumed: set[str]) -> dict[str, Any]:
    """Scalar traits named like custom attributes; objects, lists and other names are dropped."""
    return {
        name: value
        for name, value in traits.items()
        if name not in consumed
        and CUSTOM_ATTRIBUTE_NAME.fullmatch(name)
        and (value is None or isinstance(value, str | bool | int | float | Decimal))
    }
