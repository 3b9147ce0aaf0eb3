"""A message: its definition, state and counters, the request that creates one, and its JSON."""

from __future__ import annotations

import json
import secrets
import string
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
)

from segmentation.engine.segments import referenced_segment_ids, referenced_tag_ids
from segmentation.storage import messages as message_store
from segmentation.values import format_timestamp, one_line, text_block

TYPES = ("manual", "auto")
CHANNELS = ("email", "in_app")
STATS = message_store.STATS + message_store.FEEDBACK_STATS  # the counters `stats` shows
MAX_NAME_LENGTH = 255
_ID_ALPHABET = string.ascii_letters + string.digits

# The state a message must be in for its deliveries to go out.
ACTIVE_STATE = {"manual": "sent", "auto": "live"}


def _non_blank(text: str) -> str:
    if not text.strip():
        raise ValueError("must not be blank")
    return text


def new_message_id() -> str:
    return "msg_" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(12))


@dataclass(frozen=True)
class Audience:
    segment_id: str | None
    filter: dict[str, Any] | None

    def segment_references(self) -> frozenset[str]:
        """The segments the audience names: its segment and those its filter refers to directly."""
        named = referenced_segment_ids(self.filter) if self.filter is not None else set()
        return frozenset(named | ({self.segment_id} if self.segment_id is not None else set()))

    def tag_references(self) -> frozenset[str]:
        """The tags its filter tests."""
        return frozenset(referenced_tag_ids(self.filter)) if self.filter is not None else frozenset()

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
    fanned_out: bool = False  # a manual message's audience has been read whole
    # Held because SES refused for the whole account: {"code", "message", "at" (epoch)}, or None.
    paused_reason: Mapping[str, Any] | None = None

    @property
    def held(self) -> bool:
        return self.paused_reason is not None

    @property
    def active_state(self) -> str:
        return ACTIVE_STATE[self.type]

    @property
    def holds_its_segments(self) -> bool:
        """Live or paused, or sent and its audience not read whole yet: its segments stay."""
        return self.state in ("live", "paused") or (self.state == "sent" and not self.fanned_out)

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
            fanned_out=item.get("fanned_out_at") is not None,
            paused_reason=item.get("paused_reason"),
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
            "paused_reason": None
            if self.paused_reason is None
            else {
                "code": str(self.paused_reason.get("code", "")),
                "message": str(self.paused_reason.get("message", "")),
                "at": format_timestamp(self.paused_reason.get("at", self.updated_at)),
            },
        }


Block = Annotated[str, AfterValidator(text_block)]
NonBlank = Annotated[
    str,
    StringConstraints(min_length=1, max_length=MAX_NAME_LENGTH),
    AfterValidator(one_line),
    AfterValidator(_non_blank),
]


class AudienceBody(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)

    segment_id: (
        Annotated[str, StringConstraints(min_length=1, max_length=255), AfterValidator(one_line)] | None
    ) = None
    filter: dict[str, Any] | None = Field(default=None, description="A user Filter (API.md)")


class MessageCreate(BaseModel):
    """The body of POST /v1/messages (templates and the audience's meaning are checked apart)."""

    model_config = ConfigDict(
        extra="forbid",
        defer_build=True,
        json_schema_extra={
            "examples": [
                {
                    "name": "Welcome",
                    "type": "manual",
                    "channel": "in_app",
                    "audience": {"segment_id": "new"},
                    "body": "Hi {{ user.name | default: 'there' }}",
                }
            ]
        },
    )

    name: NonBlank
    type: Literal["manual", "auto"]
    channel: Literal["email", "in_app"]
    audience: AudienceBody = Field(
        description="segment_id, filter or both: the segment's members matching the filter"
    )
    subject: Block | None = Field(
        default=None, validate_default=True, description="Liquid; required for email"
    )
    body: Annotated[Block, AfterValidator(_non_blank)] = Field(description="Liquid")

    @field_validator("audience")
    @classmethod
    def _audience_names_someone(cls, audience: AudienceBody) -> AudienceBody:
        if audience.segment_id is None and audience.filter is None:
            raise ValueError("needs a segment_id, a filter or both")
        return audience

    @field_validator("subject")
    @classmethod
    def _subject_for_email(cls, subject: str | None, info: ValidationInfo) -> str | None:
        if info.data.get("channel") == "email" and (subject is None or not subject.strip()):
            raise ValueError("is required for email")
        return subject


class PreviewRequest(BaseModel):
    """The body of POST /v1/messages/preview: templates rendered for one user, nothing sent."""

    model_config = ConfigDict(
        extra="forbid",
        defer_build=True,
        json_schema_extra={
            "examples": [
                {"channel": "email", "subject": "Hi {{ user.name }}", "body": "Hello", "user_id": "u-123"}
            ]
        },
    )

    channel: Literal["email", "in_app"]
    subject: Block | None = Field(default=None, description="Liquid")
    body: Annotated[Block, AfterValidator(_non_blank)] = Field(description="Liquid")
    user_id: Annotated[str, StringConstraints(min_length=1, max_length=255), AfterValidator(one_line)]
