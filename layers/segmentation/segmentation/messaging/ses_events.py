"""SES's email events as EventBridge delivers them, read into the plain `SesFeedback` that
messaging.feedback acts on (the only module that knows their shape).

The event: `source` `aws.ses`, `detail-type` `Email Delivered` | `Email Bounced` | `Email
Complaint Received` (and others this service does not route), `detail` SES's event record:
`eventType` (`Delivery`, `Bounce`, `Complaint`), `mail` (`messageId`: what SendEmail answered;
`destination`: every recipient of the email; `timestamp`: when it was sent) and one of
`delivery.recipients`, `bounce.bouncedRecipients[].emailAddress` (with `bounce.bounceType`
`Permanent`, `Transient` or `Undetermined`) or `complaint.complainedRecipients[].emailAddress`.
Only the recipients an event names act; `mail.destination` is context, never a recipient list.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from segmentation.values import parse_timestamp

SOURCE = "aws.ses"
DELIVERED, BOUNCED, COMPLAINED = "delivered", "bounced", "complained"
# SES's eventType -> the kind of feedback it is.
_KINDS = {"Delivery": DELIVERED, "Bounce": BOUNCED, "Complaint": COMPLAINED}

Kind = Literal["delivered", "bounced", "complained"]


class NotAnSesEvent(ValueError):
    """The event is not an SES email event this service can read."""


@dataclass(frozen=True)
class SesFeedback:
    kind: Kind
    ses_message_id: str
    recipients: tuple[str, ...]  # the addresses the event is about, as SES names them
    permanent: bool  # a bounce SES will not retry (Permanent); False for every other event
    sent_at: float | None  # when SES accepted the email (mail.timestamp), epoch seconds


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class _Recipient(_Model):
    emailAddress: str


class _Bounce(_Model):
    bounceType: str
    bouncedRecipients: list[_Recipient]


class _Complaint(_Model):
    complainedRecipients: list[_Recipient]


class _Delivery(_Model):
    recipients: list[str]


class _Mail(_Model):
    messageId: str = Field(min_length=1)
    destination: list[str] = []
    timestamp: str | None = None


class _Detail(_Model):
    eventType: str
    mail: _Mail
    bounce: _Bounce | None = None
    complaint: _Complaint | None = None
    delivery: _Delivery | None = None


class _Event(_Model):
    source: str
    detail_type: str = Field(alias="detail-type")
    detail: _Detail


def parse(event: Any) -> SesFeedback | None:
    """The feedback an EventBridge event carries; None for an SES event of another type (Send,
    Open...). Raises NotAnSesEvent for anything that is not an SES email event."""
    try:
        parsed = _Event.model_validate(event)
    except ValidationError as error:
        raise NotAnSesEvent(f"not an SES email event: {error.error_count()} problem(s)") from error
    if parsed.source != SOURCE:
        raise NotAnSesEvent(f"the event comes from {parsed.source!r}, not {SOURCE!r}")
    detail = parsed.detail
    kind = _KINDS.get(detail.eventType)
    if kind is None:
        return None
    permanent = False
    if kind == DELIVERED:
        recipients = _part(detail.delivery, "delivery").recipients
    elif kind == BOUNCED:
        bounce = _part(detail.bounce, "bounce")
        recipients = [r.emailAddress for r in bounce.bouncedRecipients]
        permanent = bounce.bounceType == "Permanent"
    else:
        recipients = [r.emailAddress for r in _part(detail.complaint, "complaint").complainedRecipients]
    return SesFeedback(
        kind=kind,  # type: ignore[arg-type]
        ses_message_id=detail.mail.messageId,
        recipients=tuple(recipients),
        permanent=permanent,
        sent_at=_sent_at(detail.mail.timestamp),
    )


def _part[T](part: T | None, name: str) -> T:
    if part is None:
        raise NotAnSesEvent(f"the event has no {name} record")
    return part


def _sent_at(timestamp: str | None) -> float | None:
    if not timestamp:
        return None
    try:
        return float(parse_timestamp(timestamp))
    except ValueError:
        return None
