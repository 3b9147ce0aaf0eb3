"""Events: what a user did (API.md, Events), recorded as summaries on the user item and listed.

The names are registered like custom attributes (at most MAX_EVENT_NAMES per workspace), once
per process and name, so a steady stream of events costs one or two calls each (storage.events).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from segmentation.engine.events import summary_of
from segmentation.engine.fields import MAX_EVENT_NAMES
from segmentation.errors import Forbidden, Invalid, NotFound
from segmentation.storage import attributes as attribute_store
from segmentation.storage import events as event_store
from segmentation.storage import users as user_store
from segmentation.values import epoch_millis, format_timestamp

TARGET = "events"
# An event may be stamped a little ahead of our clock (client clocks drift), not more.
MAX_AHEAD_SECONDS = 300


def record(
    user_id: str,
    name: str,
    created_at: Decimal | None,
    event_id: str | None,
    now: float,
    *,
    may_add_name: bool,
) -> bool:
    """Count one event (False: its id was recorded before, nothing changed). The name is compared
    case-insensitively. NotFound for an unknown user, Invalid past the names' cap or too far ahead,
    Forbidden for a name never recorded when the caller may not add names (an end user's own
    X-User-Hash: the workspace's names, 120 at most, are the app's to choose)."""
    at = epoch_millis(now) if created_at is None else created_at
    if at > Decimal(str(now + MAX_AHEAD_SECONDS)):
        raise Invalid(
            "An event cannot be more than 5 minutes in the future.",
            [{"path": "created_at", "message": "created_at is more than 5 minutes after now"}],
        )
    key = name.lower()
    if not attribute_store.types_of(TARGET, [key]):
        if not may_add_name:
            raise Forbidden(
                f"The event name {key!r} has never been recorded: a new event name needs a server-side "
                "key (ingest or admin). With X-User-Hash, send only names the app has recorded before.",
                [{"path": "event_name", "message": "not a known event name"}],
            )
        attribute_store.register(TARGET, {key: "event"}, limit=MAX_EVENT_NAMES, path=lambda _: "event_name")
    return event_store.record(user_id, key, at, event_id, now)


def summaries(user_id: str) -> list[dict[str, Any]]:
    """The user's events, by name: count, first and last time."""
    user = user_store.get(user_id)
    if user is None:
        raise NotFound(f"No user has the id {user_id!r}.", code="user_not_found")
    events = user.get("events")
    found = []
    for name in sorted(events) if isinstance(events, dict) else []:
        summary = summary_of(user, name)
        if summary is None:
            continue
        found.append(
            {
                "event_name": name,
                "count": summary.count,
                "first_at": None if summary.first_at is None else format_timestamp(summary.first_at),
                "last_at": None if summary.last_at is None else format_timestamp(summary.last_at),
            }
        )
    return found


def known_names() -> dict[str, str]:
    """Every event name recorded so far → "event"."""
    return attribute_store.all_types(TARGET)
