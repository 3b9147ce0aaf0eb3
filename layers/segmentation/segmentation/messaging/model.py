"""A message: its definition, state and counters, the request that creates one, and its JSON."""

from __future__ import annotations

import json
import secrets
import string
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from segmentation import errors
from segmentation.values import format_timestamp

TYPES = ("manual", "auto")
CHANNELS = ("email", "in_app")
STATS = ("queued", "sent", "skipped", "failed")
MAX_NAME_LENGTH = 255
_ID_ALPHABET = string.ascii_letters + string.digits

# The state a message must be in for its deliveries to go out.
ACTIVE_STATE = {"manual": "sent", "auto": "live"}


def new_message_id() -> str:
    return "msg_" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(12))


@dataclass(frozen=True)
class Audience:
    segment_id: str | None
    filter: dict[str, Any] | None

    def to_json(self) -> dict[str, Any]:
        audience: dict[str, Any] = {}
        if self.segment_id is not None:
            audience["segment_id"] = self.segment_id
        if self.filter is not None:
            audience["filter"] = self.filter
        return audience


@dataclass(frozen=True)
class Message:
    id: str
    name: str
    type: str
    channel: str
    audience: Audience
    subject: str | None
    body: str
    state: str
    stats: Mapping[str, int]
    created_at: float
    updated_at: float
    sent_at: float | None

    @property
    def active_state(self) -> str:
        return ACTIVE_STATE[self.type]

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> Message:
        audience = json.loads(item["audience_json"])
        return cls(
            id=item["message_id"],
            name=item["name"],
            type=item["type"],
            channel=item["channel"],
            audience=Audience(audience.get("segment_id"), audience.get("filter")),
            subject=item.get("subject"),
            body=item["body"],
            state=item["state"],
            stats={name: int(item.get(f"stat_{name}", 0)) for name in STATS},
            created_at=float(item["created_at"]),
            updated_at=float(item["updated_at"]),
            sent_at=float(item["sent_at"]) if item.get("sent_at") is not None else None,
        )

    def to_item(self) -> dict[str, Any]:
        """The item to store (counters are written by the storage module)."""
        return {
            "message_id": self.id,
            "name": self.name,
            "type": self.type,
            "channel": self.channel,
            "audience_json": json.dumps(self.audience.to_json(), sort_keys=True),
            "audience_segment_id": self.audience.segment_id,
            "subject": self.subject,
            "body": self.body,
            "state": self.state,
            "created_at": Decimal(f"{self.created_at:.6f}"),
            "updated_at": Decimal(f"{self.updated_at:.6f}"),
            "sent_at": None,
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "type": self.type,
            "channel": self.channel,
            "audience": self.audience.to_json(),
            "subject": self.subject,
            "body": self.body,
            "state": self.state,
            "stats": {name: max(0, int(self.stats.get(name, 0))) for name in STATS},
            "created_at": format_timestamp(self.created_at),
            "updated_at": format_timestamp(self.updated_at),
            "sent_at": format_timestamp(self.sent_at) if self.sent_at is not None else None,
        }


@dataclass(frozen=True)
class MessageRequest:
    """A parsed, shape-checked POST /v1/messages body (templates and audience checked apart)."""

    name: str
    type: str
    channel: str
    segment_id: str | None
    filter: dict[str, Any] | None
    subject: str | None
    body: str


def _detail(path: str, message: str) -> dict[str, str]:
    return {"path": path, "message": message}


def parse_request(body: Any) -> MessageRequest:
    """Check the shape of a create request; every problem found is named by its path."""
    if not isinstance(body, Mapping):
        raise errors.Invalid("The body must be a JSON object.", [_detail("", "must be an object")])
    problems: list[dict[str, str]] = []
    allowed = {"name", "type", "channel", "audience", "subject", "body"}
    problems += [_detail(key, "is not a known field") for key in sorted(set(body) - allowed)]

    name = body.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME_LENGTH:
        problems.append(_detail("name", f"is required: a string of 1 to {MAX_NAME_LENGTH} characters"))
    kind = body.get("type")
    if kind not in TYPES:
        problems.append(_detail("type", "must be 'manual' or 'auto'"))
    channel = body.get("channel")
    if channel not in CHANNELS:
        problems.append(_detail("channel", "must be 'email' or 'in_app'"))

    segment_id: str | None = None
    filter_: dict[str, Any] | None = None
    audience = body.get("audience")
    if not isinstance(audience, Mapping):
        problems.append(_detail("audience", "is required: an object with segment_id, filter or both"))
    else:
        problems += [
            _detail(f"audience.{key}", "is not a known field")
            for key in sorted(set(audience) - {"segment_id", "filter"})
        ]
        raw_segment, raw_filter = audience.get("segment_id"), audience.get("filter")
        if raw_segment is None and raw_filter is None:
            problems.append(_detail("audience", "needs a segment_id, a filter or both"))
        if raw_segment is not None and (not isinstance(raw_segment, str) or not raw_segment):
            problems.append(_detail("audience.segment_id", "must be a segment id"))
        else:
            segment_id = raw_segment
        if raw_filter is not None and not isinstance(raw_filter, Mapping):
            problems.append(_detail("audience.filter", "must be a filter object"))
        elif raw_filter is not None:
            filter_ = dict(raw_filter)

    subject = body.get("subject")
    if subject is not None and not isinstance(subject, str):
        problems.append(_detail("subject", "must be a string"))
    elif channel == "email" and (subject is None or not subject.strip()):
        problems.append(_detail("subject", "is required for email"))
    text = body.get("body")
    if not isinstance(text, str) or not text.strip():
        problems.append(_detail("body", "is required: a non-empty string"))

    if problems:
        raise errors.Invalid(
            "The message is not valid: " + "; ".join(f"{p['path']} {p['message']}" for p in problems),
            problems,
        )
    return MessageRequest(
        name=str(name).strip(),
        type=str(kind),
        channel=str(channel),
        segment_id=segment_id,
        filter=filter_,
        subject=subject,
        body=str(text),
    )
