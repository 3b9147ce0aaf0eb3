"""Users: upserts, reads with their segments now, logins and inbox (no boto3: storage does I/O)."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from segmentation import workspace_view
from segmentation.errors import Invalid, NotFound
from segmentation.records import epoch_millis
from segmentation.storage import users as user_store

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
    changes = workspace_view.attribute_changes("users", custom_attributes)
    return user_store.upsert(user_id, values, changes.sets, changes.removes, now)


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
    return sorted(workspace_view.user_segments(user, now))


def messages_of(user_id: str) -> list[dict[str, Any]]:
    """The in-app messages delivered to a user, newest first."""
    from segmentation.storage import inbox  # the messaging part's table; only these routes need it

    return inbox.list_for_user(user_id, limit=INBOX_LIMIT)
