"""Request bodies (validated by the resolver) and response shapes (for the OpenAPI document).

Request models forbid unknown fields; `model_fields_set` tells which fields were sent, so an
upsert changes only those. Timestamps and numbers are converted here to what records store.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    StrictBool,
    StringConstraints,
    WithJsonSchema,
)

from segmentation.people.attributes import check_attribute_value, check_metadata_value
from segmentation.values import MAX_STRING_LENGTH, one_line, parse_timestamp, to_number

Id = Annotated[str, StringConstraints(min_length=1, max_length=MAX_STRING_LENGTH), AfterValidator(one_line)]
ShortString = Annotated[str, StringConstraints(max_length=MAX_STRING_LENGTH), AfterValidator(one_line)]
Timestamp = Annotated[
    Decimal,
    PlainValidator(parse_timestamp),
    WithJsonSchema(
        {
            "anyOf": [{"type": "string", "format": "date-time"}, {"type": "number"}],
            "description": "ISO 8601 or Unix seconds",
        }
    ),
]
Number = Annotated[Decimal, PlainValidator(to_number), WithJsonSchema({"type": "number"})]
AttributeValue = Annotated[
    Any,
    PlainValidator(check_attribute_value),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "maxLength": 255},
                {"type": "number"},
                {"type": "boolean"},
                {"type": "null"},
            ]
        }
    ),
]
CustomAttributes = dict[str, AttributeValue]


class RequestBody(BaseModel):
    """A request body. Its validator is built on its route's first request, not at import: each
    route needs one, and a cold start would otherwise build them all."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    def sent_fields(self, *exclude: str) -> dict[str, Any]:
        """The fields present in the request body (null included: it removes the value)."""
        return {name: getattr(self, name) for name in self.model_fields_set if name not in exclude}


class UserUpsert(RequestBody):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "user_id": "u-123",
                    "email": "ada@example.com",
                    "name": "Ada Lovelace",
                    "signed_up_at": "2026-11-01T09:30:00Z",
                    "company_ids": ["acme"],
                    "custom_attributes": {"plan": "free trial", "photos_uploaded": 82},
                }
            ]
        }
    )

    user_id: Id
    email: ShortString | None = None
    name: ShortString | None = None
    phone: ShortString | None = None
    signed_up_at: Timestamp | None = None
    last_seen_at: Timestamp | None = None
    unsubscribed_from_emails: StrictBool = False
    company_ids: Annotated[list[Id], Field(max_length=100)] | None = None
    custom_attributes: CustomAttributes | None = None


class CompanyUpsert(RequestBody):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"company_id": "acme", "name": "Acme", "plan": "pro", "size": 40}]}
    )

    company_id: Id
    name: ShortString | None = None
    plan: ShortString | None = None
    monthly_spend: Number | None = None
    size: Number | None = None
    industry: ShortString | None = None
    website: ShortString | None = None
    remote_created_at: Timestamp | None = None
    custom_attributes: CustomAttributes | None = None


class LoginBody(RequestBody):
    model_config = ConfigDict(json_schema_extra={"examples": [{"at": "2026-11-28T10:00:00Z"}]})

    at: Timestamp | None = None


EventName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$")]
MetadataValue = Annotated[
    Any,
    PlainValidator(check_metadata_value),
    WithJsonSchema(
        {"anyOf": [{"type": "string", "maxLength": 255}, {"type": "number"}, {"type": "boolean"}]}
    ),
]


class EventBody(RequestBody):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "event_name": "uploaded_photo",
                    "created_at": "2026-11-28T10:00:00Z",
                    "id": "evt-8812",
                    "metadata": {"size_kb": 120, "source": "ios"},
                }
            ]
        }
    )

    event_name: EventName = Field(description="Compared case-insensitively")
    created_at: Timestamp | None = Field(default=None, description="Default now; at most 5 minutes ahead")
    id: Id | None = Field(default=None, description="Makes the call idempotent for this user")
    metadata: Annotated[dict[str, MetadataValue], Field(max_length=10)] | None = Field(
        default=None, description="At most 10 keys; validated, not stored (no route reads it back)"
    )


class ApiKeyCreate(RequestBody):
    model_config = ConfigDict(json_schema_extra={"examples": [{"role": "read", "name": "analytics"}]})

    role: Literal["ingest", "read", "write", "admin"]
    name: ShortString | None = None


# Response shapes: documentation only (handlers build plain dicts through the presenters).


class Shape(BaseModel):
    """A response shape, built only when the OpenAPI document is."""

    model_config = ConfigDict(defer_build=True)


JsonAttributes = dict[str, str | float | bool]


class User(Shape):
    user_id: str
    email: str | None
    name: str | None
    phone: str | None
    signed_up_at: str | None
    last_seen_at: str | None
    session_count: int
    unsubscribed_from_emails: bool
    email_status: Literal["ok", "bounced", "complained"] = Field(
        description="What SES reported about the current email: bounced (skipped until the email "
        "changes) or complained (unsubscribed); read-only"
    )
    company_ids: list[str]
    custom_attributes: JsonAttributes
    segments: list[str]
    created_at: str
    updated_at: str


class Company(Shape):
    company_id: str
    name: str | None
    plan: str | None
    monthly_spend: float | None
    size: float | None
    industry: str | None
    website: str | None
    remote_created_at: str | None
    custom_attributes: JsonAttributes
    user_count: int
    segments: list[str]
    created_at: str
    updated_at: str


class InAppMessage(Shape):
    message_id: str
    subject: str | None
    body: str
    delivered_at: str


class EventSummary(Shape):
    event_name: str
    count: int
    first_at: str | None
    last_at: str | None


class EventSummaryPage(Shape):
    data: list[EventSummary]
    next_cursor: str | None = None


class Accepted(Shape):
    accepted: bool


class Login(Shape):
    user: User
    segments: list[str]
    messages: list[InAppMessage]


class InAppMessagePage(Shape):
    data: list[InAppMessage]
    next_cursor: str | None = None


class ApiKey(Shape):
    id: str
    role: str
    name: str | None
    created_at: str
    revoked: bool


class ApiKeyCreated(ApiKey):
    key: str = Field(description="The secret key: shown once, stored only as a hash.")


class Me(Shape):
    key_id: str
    role: str
    name: str | None


class ApiKeyPage(Shape):
    data: list[ApiKey]
    next_cursor: str | None


class MessageAudience(Shape):
    segment_id: str | None = None
    filter: dict[str, Any] | None = None


class MessageStats(Shape):
    queued: int
    sent: int
    skipped: int
    failed: int
    delivered: int = Field(description="Emails SES reported delivered")
    bounced: int = Field(description="Emails SES reported bounced (permanent or transient)")
    complained: int = Field(description="Emails whose recipient marked them as spam")


class PausedReason(Shape):
    code: str = Field(description="Why SES refused, snake_case: sending_paused, sender_not_verified, ...")
    message: str
    at: str


class Message(Shape):
    id: str
    name: str
    type: Literal["manual", "auto"]
    channel: Literal["email", "in_app"]
    audience: MessageAudience
    subject: str | None
    body: str
    state: Literal["draft", "live", "paused", "sent"]
    stats: MessageStats
    created_at: str
    updated_at: str
    sent_at: str | None
    paused_reason: PausedReason | None = Field(
        description="Set when SES refused to send for the whole account: the message waits for "
        "POST /v1/messages/{id}/resume"
    )


class MessagePage(Shape):
    data: list[Message]
    next_cursor: str | None


class MessagePreview(Shape):
    subject: str | None
    body: str


class Delivery(Shape):
    user_id: str
    status: Literal["queued", "sent", "skipped", "failed"]
    reason: str | None
    at: str
    feedback: Literal["delivered", "bounced", "complained"] | None = Field(
        description="The strongest of what SES reported about this email: complained over "
        "bounced over delivered; null until SES reports"
    )


class DeliveryPage(Shape):
    data: list[Delivery]
    next_cursor: str | None


class FieldInfo(Shape):
    field: str
    type: Literal["string", "number", "boolean", "timestamp", "segment"]
    ops: list[str]
    source: Literal["standard", "custom", "company", "event", "segment"]


class FieldPage(Shape):
    data: list[FieldInfo]
    next_cursor: str | None


class CountResult(Shape):
    count: int
    exact: bool
    margin: int = Field(description="95% half-width of an estimate; 0 when exact")
    as_of: str


class ErrorDetail(Shape):
    path: str
    message: str


class ErrorInfo(Shape):
    code: str
    message: str
    details: list[ErrorDetail] | None = None


class ErrorBody(Shape):
    error: ErrorInfo
