"""Message commands and queries behind the HTTP routes (no boto3: storage modules do the I/O)."""

from __future__ import annotations

from typing import Any

from segmentation import cursors, errors
from segmentation.messaging import audience as audiences
from segmentation.messaging import auto, sources, templates
from segmentation.messaging.model import Audience, Message, new_message_id, parse_request
from segmentation.storage import deliveries, message_queues, messages
from segmentation.values import format_timestamp

PUBLIC_STATUS = {
    "queued": "queued",
    "sending": "queued",
    "sent": "sent",
    "skipped": "skipped",
    "failed": "failed",
}


def create(body: Any, now: float) -> Message:
    request = parse_request(body)
    if request.subject is not None:
        templates.check(request.subject, "subject")
    templates.check(request.body, "body")
    audience = Audience(request.segment_id, request.filter)
    audiences.check(audience)
    message = Message(
        id=new_message_id(),
        name=request.name,
        type=request.type,
        channel=request.channel,
        audience=audience,
        subject=request.subject,
        body=request.body,
        state="draft",
        stats={},
        created_at=now,
        updated_at=now,
        sent_at=None,
    )
    messages.put_new(message.to_item())
    return require(message.id)


def require(message_id: str) -> Message:
    item = messages.get(message_id)
    if item is None or item.get("state") == "deleted":
        raise errors.NotFound(f"There is no message '{message_id}'.")
    auto.invalidate()
    return Message.from_item(item)


def list_messages(limit: int, cursor: str | None) -> tuple[list[Message], str | None]:
    """Newest first. The cursor is the id of the last message of the previous page."""
    found = sorted(
        (Message.from_item(item) for item in messages.scan_all()), key=lambda m: (-m.created_at, m.id)
    )
    start = 0
    if cursor:
        ids = [m.id for m in found]
        if cursor not in ids:
            raise cursors.InvalidCursor()
        start = ids.index(cursor) + 1
    page = found[start : start + limit]
    more = start + limit < len(found)
    return page, (page[-1].id if more and page else None)


def _wrong_type(message: Message, action: str, needed: str) -> errors.Conflict:
    return errors.Conflict(
        f"Message '{message.id}' is a {message.type} message; only {needed} messages can be {action}.",
        code="wrong_message_type",
    )


def send(message_id: str, now: float) -> Message:
    """Manual: draft → sent, then one fan-out job takes the audience of this instant."""
    message = require(message_id)
    if message.type != "manual":
        raise _wrong_type(message, "sent (auto messages are put live)", "manual")
    _check_segment_still_there(message)
    if not messages.change_state(message_id, to_state="sent", from_states=("draft",), now=now):
        raise errors.Conflict(f"Message '{message_id}' was already sent.", code="message_already_sent")
    message_queues.enqueue_fanout({"message_id": message_id, "kind": "manual", "cursor": None, "at": now})
    return require(message_id)


def put_live(message_id: str, now: float) -> Message:
    """Auto: draft | paused → live, and everyone in the audience now is queued (each once, ever)."""
    message = require(message_id)
    if message.type != "auto":
        raise _wrong_type(message, "put live (manual messages are sent)", "auto")
    if message.state == "live":
        return message
    _check_segment_still_there(message)
    if not messages.change_state(
        message_id, to_state="live", from_states=("draft", "paused"), now=now, live_set=True
    ):
        raise errors.Conflict(
            f"Message '{message_id}' changed meanwhile; try again.", code="concurrent_change"
        )
    auto.invalidate()
    message_queues.enqueue_fanout({"message_id": message_id, "kind": "auto", "cursor": None, "at": now})
    return require(message_id)


def pause(message_id: str, now: float) -> Message:
    message = require(message_id)
    if message.type != "auto":
        raise _wrong_type(message, "paused", "auto")
    if message.state == "paused":
        return message
    if message.state != "live":
        raise errors.Conflict(
            f"Message '{message_id}' is {message.state}; only a live message can be paused."
        )
    if not messages.change_state(
        message_id, to_state="paused", from_states=("live",), now=now, live_set=False
    ):
        raise errors.Conflict(
            f"Message '{message_id}' changed meanwhile; try again.", code="concurrent_change"
        )
    return require(message_id)


def delete(message_id: str, now: float) -> None:
    """Soft delete: hidden from the API; deliveries still queued are skipped by the sender."""
    message = require(message_id)
    states = ("draft", "live", "paused", "sent")
    live_set = False if message.type == "auto" else None
    if not messages.change_state(
        message_id, to_state="deleted", from_states=states, now=now, live_set=live_set
    ):
        raise errors.NotFound(f"There is no message '{message_id}'.")
    auto.invalidate()


def list_deliveries(
    message_id: str, limit: int, cursor: str | None
) -> tuple[list[dict[str, Any]], str | None]:
    require(message_id)
    items, next_cursor = deliveries.page(message_id, limit=limit, cursor=cursor)
    return [
        {
            "user_id": item["user_id"],
            "status": PUBLIC_STATUS.get(str(item.get("status")), "queued"),
            "reason": item.get("reason"),
            "at": format_timestamp(item["at"]),
        }
        for item in items
    ], next_cursor


def _check_segment_still_there(message: Message) -> None:
    segment_id = message.audience.segment_id
    if segment_id is not None and sources.segment_target(segment_id) is None:
        raise errors.Conflict(
            f"The audience segment '{segment_id}' no longer exists; create a new message.",
            code="audience_segment_missing",
        )
