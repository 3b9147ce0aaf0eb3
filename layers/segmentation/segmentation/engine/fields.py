"""The filter language's vocabulary: standard fields, value types and the ops each type takes."""

from __future__ import annotations

import re
from decimal import Decimal

from segmentation.engine.timestamps import parse_timestamp
from segmentation.vocabulary import is_number

USER_FIELDS: dict[str, str] = {
    "user_id": "string",
    "email": "string",
    "name": "string",
    "phone": "string",
    "signed_up_at": "timestamp",
    "last_seen_at": "timestamp",
    "session_count": "number",
    "unsubscribed_from_emails": "boolean",
    "email_status": "string",
}

COMPANY_FIELDS: dict[str, str] = {
    "company_id": "string",
    "name": "string",
    "plan": "string",
    "industry": "string",
    "website": "string",
    "monthly_spend": "number",
    "size": "number",
    "user_count": "number",
    "remote_created_at": "timestamp",
}

STANDARD_FIELDS: dict[str, dict[str, str]] = {"users": USER_FIELDS, "companies": COMPANY_FIELDS}
# Standard fields whose stored absence means a value, not "unknown": a user is `ok` until SES
# reports a bounce or complaint (the item carries `email_status` only then; a new email removes it).
# Only user fields; no company field shares these names (tested).
FIELD_DEFAULTS: dict[str, str] = {"email_status": "ok"}
EMAIL_STATUSES = ("ok", "bounced", "complained")
VALUE_TYPES = ("string", "number", "boolean", "timestamp")

# Whole strings only (fullmatch): "plan\n" is not a name.
CUSTOM_ATTRIBUTE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
# Event names (compared case-insensitively, kept lower-cased), and how many a workspace may hold.
EVENT_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,63}")
MAX_EVENT_NAMES = 120
EVENT_FIELD_TYPES = {"count": "number", "first_at": "timestamp", "last_at": "timestamp"}

PRESENCE_OPS = ("exists", "not_exists")
STRING_OPS = ("eq", "ne", "in", "not_in", "contains", "not_contains", "starts_with", "ends_with")
NUMBER_OPS = ("eq", "ne", "gt", "gte", "lt", "lte", "in", "not_in")
BOOLEAN_OPS = ("is_true", "is_false")
DAYS_OPS = (
    "less_than_days_ago",
    "more_than_days_ago",
    "exactly_days_ago",
    "less_than_days_from_now",
    "more_than_days_from_now",
)
DATE_OPS = ("before", "after", "on")
TIMESTAMP_OPS = DAYS_OPS + DATE_OPS
SEGMENT_OPS = ("in_segment", "not_in_segment")
TAG_OPS = ("has_tag", "not_has_tag")
# The user filter field `tag` tests the user item's `tag_ids` (vocabulary.TAG_IDS).
TAG_FIELD = "tag"

OPS_BY_TYPE: dict[str, tuple[str, ...]] = {
    "string": PRESENCE_OPS + STRING_OPS,
    "number": PRESENCE_OPS + NUMBER_OPS,
    "boolean": PRESENCE_OPS + BOOLEAN_OPS,
    "timestamp": PRESENCE_OPS + TIMESTAMP_OPS,
    "segment": SEGMENT_OPS,
    "tag": TAG_OPS,
    # A custom attribute whose type is not known (lenient parsing) can only be tested for presence.
    "any": PRESENCE_OPS,
}

# Ops that take no `value`.
VALUELESS_OPS = frozenset(PRESENCE_OPS + BOOLEAN_OPS)
# The ops an unknown value makes true; every other op is false on an unknown value.
TRUE_WHEN_UNKNOWN = frozenset({"not_exists", "ne", "not_in", "not_contains", "not_in_segment", "not_has_tag"})

# Whole days beyond which a days-op is surely a mistake (and calendar arithmetic would overflow).
MAX_DAYS = 100_000
SECONDS_PER_DAY = 86400.0


def holds_timestamps(name: str) -> bool:
    """API.md: "a name that ends in `_at` holds a timestamp" (a custom attribute's name)."""
    return name.endswith("_at")


def attribute_type_of(name: str, value: object) -> str | None:
    """The type a custom attribute value gives its name: the one rule, used by ingest and the
    data-attribute registry alike (API.md: "a name that ends in `_at` holds a timestamp").

    "timestamp" for a name ending in `_at` (its value must be ISO 8601 with an offset or `Z`, or
    Unix seconds); otherwise "string", "number" or "boolean" by the value; None for None (a
    removal). Raises ValueError, with a reason a person can act on, for anything else: lists,
    objects, and an `_at` value that is not a timestamp.
    """
    if value is None:
        return None
    if holds_timestamps(name):
        if isinstance(value, bool) or not (is_number(value) or isinstance(value, str)):
            raise ValueError("ends in _at, so it holds timestamps: ISO 8601 or Unix seconds")
        parse_timestamp(value)  # raises ValueError with what is wrong
        return "timestamp"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, str):
        return "string"
    if isinstance(value, int | float | Decimal):
        return "number"
    raise ValueError("must be a string, a number, a boolean or null")
