"""Users: upserts, reads with their segments now, logins and inbox (no boto3: storage does I/O)."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from segmentation.errors import Invalid, NotFound
from segmentation.people import evaluable
from segmentation.people.attributes import attribute_changes
from segmentation.storage import inbox
from segmentation.storage import users as user_store
from segmentation.values import epoch_millis

# A login may be stamped a little ahead of our clock (client clocks drift), not more.
MAX_LOGIN_AHEAD_SECONDS = 300
INBOX_LIMIT = 50


def upsert_user(
    user_id: str, fields: Mapping[str, Any], custom_attributes: Mapping[str, Any] | None, now: float
) -> tuple[dict[str, Any], bool]:
    """Apply the sent fields (None removes); returns (the stored user, created?)."""
    values = dict(fields)
    if "company_ids" in values:
        values["company_ids"] = list(dict.fromkeys(values["company_ids"] or []))
    changes = attribute_changes("users", custom_attributes)
    return user_store.upsert(user_id, values, changes.sets, changes.removes, now)


def unsubscribe_from_emails(user_id: str, now: float) -> bool:
    """A user's one-click unsubscribe: `unsubscribed_from_emails` true (True when it changed)."""
    return user_store.unsubscribe(user_id, now)


def get_user(user_id: str) -> dict[str, Any]:
    item = user_store.get(user_id)
    if item is None:
        raise NotFound(f"No user has the id {user_id!r}.")
    return item


def delete_user(user_id: str) -> None:
    user_store.delete(user_id)


def record_login(user_id: str, at: Decimal | None, now: float) -> dict[str, Any]:
    """Count a login at `at` (default now); returns the user after it."""
    if at is None:
        at = epoch_millis(now)
    elif at > Decimal(str(now + MAX_LOGIN_AHEAD_SECONDS)):
        raise Invalid(
            "A login cannot be more than 5 minutes in the future.",
            [{"path": "at", "message": "at is more than 5 minutes after now"}],
        )
    return user_store.record_login(user_id, at, now)


def segments_of(user: Mapping[str, Any], now: float) -> list[str]:
    return sorted(evaluable.user_segments(user, now))


def messages_of(user_id: str) -> list[dict[str, Any]]:
    """The in-app messages delivered to a user, newest first."""
    return inbox.list_for_user(user_id, limit=INBOX_LIMIT)
