"""Message commands and queries behind the HTTP routes (no boto3: storage modules do the I/O)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from segmentation import definitions, errors
from segmentation.auth import unsubscribe_links
from segmentation.engine.segments import PREDEFINED_IDS
from segmentation.jobs import FanoutJob, ParkedJob
from segmentation.messaging import audience as audiences
from segmentation.messaging import auto, feedback, rendering, templates
from segmentation.messaging.model import Audience, Message, MessageCreate, PreviewRequest, new_message_id
from segmentation.storage import cursors, deliveries, messages, queues
from segmentation.storage import segments as segment_store
from segmentation.storage import tags as tag_store
from segmentation.storage import users as user_store
from segmentation.values import format_timestamp

PUBLIC_STATUS = {
    "queued": "queued",
    "sending": "queued",
    "sent": "sent",
    "skipped": "skipped",
    "failed": "failed",
}


def create(request: MessageCreate, now: float) -> Message:
    if request.subject is not None:
        templates.check(request.subject, "subject")
    templates.check(request.body, "body")
    audience = Audience(request.audience.segment_id, request.audience.filter)
    audiences.check(audience)
    message = Message(
        id=new_message_id(),
        name=request.name.strip(),
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
    # A filter naming tags: the tags must still exist when it is stored, and the definitions'
    # version moves on, so that a tag's delete that checked before finds this message (409).
    tagged = sorted(audience.tag_references())
    checks = (
        [*(tag_store.exists_check(tag) for tag in tagged), segment_store.version_bump()] if tagged else []
    )
    refused = messages.put_new(message.to_item(), also=checks)
    if refused is not None:
        raise _tags_gone(tagged)
    return require(message.id)


def require(message_id: str) -> Message:
    item = messages.get(message_id)
    if item is None or item.get("state") == "deleted":
        raise errors.NotFound(f"There is no message '{message_id}'.")
    auto.invalidate()
    return Message.from_item(item)


def list_messages(limit: int, cursor: str | None) -> tuple[list[Message], str | None]:
    """Newest first, a page of the Messages table's listing index. The cursor holds the order key
    of the last message of the previous page, so a message deleted meanwhile does not break paging."""
    after = None
    if cursor:
        position = cursors.decode(cursor, fields={"c": Decimal, "m": str})
        after = (position["c"], position["m"])
    items, last = messages.listed_page(limit, after)
    next_cursor = cursors.encode({"c": last[0], "m": last[1]}) if last is not None else None
    return [Message.from_item(item) for item in items], next_cursor


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
    # Until its audience is read whole, the message holds its segments: the same transaction
    # checks they exist and moves the definitions' version on (as /live does).
    refused = messages.change_state(
        message_id,
        to_state="sent",
        from_states=("draft",),
        now=now,
        also=[*_audience_checks(message), segment_store.version_bump()],
    )
    if refused is not None:
        _refusal(message, refused, "Message '{id}' was already sent.", "message_already_sent")
    queues.send_fanout_job(FanoutJob(message_id=message_id, kind="manual", at=now))
    return require(message_id)


def put_live(message_id: str, now: float) -> Message:
    """Auto: draft | paused → live, and everyone in the audience now is queued (each once, ever)."""
    message = require(message_id)
    if message.type != "auto":
        raise _wrong_type(message, "put live (manual messages are sent)", "auto")
    if message.state == "live":
        return message
    if message.held:
        raise _held(message)
    # Live, the message depends on the segments its audience names: the same transaction checks
    # that they exist and moves the definitions' version on, so a concurrent delete of one of
    # them either fails here or finds this message live when it checks again (race-free 409s).
    refused = messages.change_state(
        message_id,
        to_state="live",
        from_states=("draft", "paused"),
        now=now,
        live_set=True,
        also=[*_audience_checks(message), segment_store.version_bump()],
    )
    if refused is not None:
        _refusal(message, refused, "Message '{id}' changed meanwhile; try again.", "concurrent_change")
    auto.invalidate()
    queues.send_fanout_job(FanoutJob(message_id=message_id, kind="auto", at=now))
    return require(message_id)


def _held(message: Message) -> errors.Conflict:
    code = (message.paused_reason or {}).get("code")
    return errors.Conflict(
        f"Message '{message.id}' was paused because SES refused to send ({code}); "
        f"fix that, then POST /v1/messages/{message.id}/resume.",
        code="message_held",
    )


def resume(message_id: str, now: float) -> Message:
    """A message held by an account-wide SES refusal sends again: its hold is cleared (an auto
    message goes back to live and fans out to everyone who matches now, as /live does), and its
    parked deliveries are queued again. 409 when it is not held."""
    message = require(message_id)
    if not message.held:
        raise errors.Conflict(
            f"Message '{message_id}' is not paused by an SES refusal; there is nothing to resume.",
            code="nothing_to_resume",
        )
    auto_message = message.type == "auto"
    also = [*_audience_checks(message), segment_store.version_bump()] if auto_message else []
    refused = messages.release_hold(message_id, auto=auto_message, now=now, also=also)
    if refused is not None:
        _refusal(message, refused, "Message '{id}' changed meanwhile; try again.", "concurrent_change")
    if auto_message:
        auto.invalidate()
        queues.send_fanout_job(FanoutJob(message_id=message_id, kind="auto", at=now))
    queues.send_fanout_job(ParkedJob(message_id=message_id, kind="resume"))
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
    if messages.change_state(message_id, to_state="paused", from_states=("live",), now=now, live_set=False):
        raise errors.Conflict(
            f"Message '{message_id}' changed meanwhile; try again.", code="concurrent_change"
        )
    return require(message_id)


def delete(message_id: str, now: float) -> None:
    """Soft delete: hidden from the API; deliveries still queued are skipped by the sender."""
    message = require(message_id)
    states = ("draft", "live", "paused", "sent")
    live_set = False if message.type == "auto" else None
    if messages.change_state(message_id, to_state="deleted", from_states=states, now=now, live_set=live_set):
        raise errors.NotFound(f"There is no message '{message_id}'.")
    auto.invalidate()
    # Deliveries parked while it was held have no job: record them as skipped. (Sent whether or
    # not it looked held: a hold may have landed since it was read; an empty page costs a Query.)
    queues.send_fanout_job(ParkedJob(message_id=message_id, kind="drop"))


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
            "feedback": feedback.strongest(item.get("feedback_seen")),
        }
        for item in items
    ], next_cursor


def _stored_references(message: Message) -> list[str]:
    """The stored segments (not predefined: those are never deleted) the audience names."""
    return sorted(message.audience.segment_references() - PREDEFINED_IDS)


def _audience_checks(message: Message) -> list[dict[str, Any]]:
    return [segment_store.exists_check(segment_id) for segment_id in _stored_references(message)] + [
        tag_store.exists_check(tag_id) for tag_id in sorted(message.audience.tag_references())
    ]


def _tags_gone(tag_ids: list[str]) -> errors.Invalid:
    gone = [tag_id for tag_id in tag_ids if tag_store.get(tag_id) is None]
    return errors.Invalid(
        f"The audience's filter names tags that no longer exist ({', '.join(gone) or 'one of them'}).",
        [{"path": "audience.filter", "tag_id": tag_id, "message": "no such tag"} for tag_id in gone],
        code="invalid_filter",
    )


def _refusal(message: Message, reasons: list[Any], state_message: str, state_code: str) -> None:
    """Raise what a refused state change means: its state moved, or a segment or tag it names is gone."""
    if reasons[0].condition_failed:
        raise errors.Conflict(state_message.format(id=message.id), code=state_code)
    tags_gone = [
        tag_id for tag_id in sorted(message.audience.tag_references()) if tag_store.get(tag_id) is None
    ]
    if tags_gone:
        raise errors.Conflict(
            f"The audience's filter names tags that no longer exist ({', '.join(tags_gone)}); "
            "create a new message.",
            details=[
                {"path": "audience.filter", "tag_id": tag_id, "message": "no longer exists"}
                for tag_id in tags_gone
            ],
            code="audience_tag_missing",
        )
    gone = [sid for sid in _stored_references(message) if definitions.get(sid, check_now=True) is None]
    raise errors.Conflict(
        f"The audience names segments that no longer exist ({', '.join(gone) or 'one of them'}); "
        "create a new message.",
        details=[{"path": "audience", "segment_id": sid, "message": "no longer exists"} for sid in gone],
        code="audience_segment_missing",
    )


def preview(request: PreviewRequest, unsubscribe_base: str) -> rendering.Rendered:
    """The subject and body as one user would get them (the sender's rendering and limits). An
    email's `{{ unsubscribe_url }}` points at `unsubscribe_base` with the token `preview`, which
    opens nothing: a preview has no delivery to unsubscribe from."""
    if request.subject is not None:
        templates.check(request.subject, "subject")
    templates.check(request.body, "body")
    user = user_store.get(request.user_id)
    if user is None:
        raise errors.NotFound(f"No user has the id {request.user_id!r}.", code="user_not_found")
    try:
        url = unsubscribe_links.preview_url(unsubscribe_base) if request.channel == "email" else None
        return rendering.render(request.subject, request.body, user, unsubscribe_url=url)
    except templates.TemplateFailed as error:
        field = error.field or "body"
        raise errors.Invalid(
            f"The {field} template cannot be rendered for this user: {error}",
            [{"path": field, "message": str(error)}],
            code=templates.BUDGET_CODE if error.code == templates.BUDGET_CODE else None,
        ) from error
