"""SES's email events, locally: what SES would publish about an email it accepted, through the
configuration set's event destinations (`POST /_local/ses/events`).

SES publishes an event only for an email sent through a configuration set with an enabled event
destination whose `MatchingEventTypes` include its type; to EventBridge it goes to the default
bus, `source` `aws.ses`, with SES's event record as `detail` (shaped as in SES's documentation,
"Examples of event data that Amazon SES publishes"). The stack puts it on the local default bus
and the template's rules route it, as deployed.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from infra.local.intrinsics import ACCOUNT_ID, REGION

# The request's type -> (SES's MatchingEventTypes name, EventBridge's detail-type, the detail's part).
EVENT_TYPES = {
    "Bounce": ("bounce", "Email Bounced", "bounce"),
    "Complaint": ("complaint", "Email Complaint Received", "complaint"),
    "Delivery": ("delivery", "Email Delivered", "delivery"),
}


class SesEventRequest(BaseModel):
    """`POST /_local/ses/events`: make SES report this about the last email it accepted for `email`."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["Bounce", "Complaint", "Delivery"]
    email: str = Field(min_length=3, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")
    # Bounces only (ignored otherwise); SES reports Permanent or Transient (after giving up retrying).
    bounce_type: Literal["Permanent", "Transient"] = "Permanent"


def last_email_to(emails: list[dict[str, Any]], address: str) -> dict[str, Any] | None:
    """The most recent accepted email (outbox.accepted) with `address` among its recipients."""
    wanted = address.strip().casefold()
    for email in reversed(emails):
        recipients = (email.get("sent") or {}).get("destination") or email.get("to") or []
        if any(str(r).strip().casefold() == wanted for r in recipients):
            return email
    return None


def _iso(epoch: float, *, millis: bool = True) -> str:
    moment = datetime.fromtimestamp(epoch, UTC)
    text = moment.isoformat(timespec="milliseconds" if millis else "seconds")
    return text.replace("+00:00", "Z")


def _named(email: dict[str, Any], address: str) -> str:
    """The recipient as the email spelt it (SES reports the address it delivered to)."""
    sent = email.get("sent") or {}
    for recipient in sent.get("destination") or email.get("to") or []:
        if str(recipient).strip().casefold() == address.strip().casefold():
            return str(recipient)
    return address


def record(request: SesEventRequest, email: dict[str, Any], now: float) -> dict[str, Any]:
    """SES's event record (the EventBridge `detail`) about `request.email` for this email."""
    sent = email.get("sent") or {}
    sender = str(sent.get("from") or "")
    recipient = _named(email, request.email)
    destination = list(sent.get("destination") or email.get("to") or [])
    tags: dict[str, list[str]] = {
        "ses:source-ip": ["127.0.0.1"],
        "ses:from-domain": [sender.rpartition("@")[2]],
        "ses:caller-identity": ["local"],
    }
    if sent.get("configuration_set"):
        tags["ses:configuration-set"] = [str(sent["configuration_set"])]
    tags.update({name: [value] for name, value in (sent.get("tags") or {}).items()})
    mail = {
        "timestamp": _iso(float(email["at"])),
        "source": sender,
        "sourceArn": f"arn:aws:ses:{REGION}:{ACCOUNT_ID}:identity/{sender}",
        "sendingAccountId": ACCOUNT_ID,
        "messageId": email["ses_message_id"],
        "destination": destination,
        "headersTruncated": False,
        "headers": [
            {"name": "From", "value": sender},
            {"name": "To", "value": ", ".join(sent.get("to") or email.get("to") or [])},
            {"name": "Subject", "value": str(email.get("subject") or "")},
            *({"name": name, "value": value} for name, value in (email.get("headers") or {}).items()),
        ],
        "commonHeaders": {
            "from": [sender],
            "to": list(sent.get("to") or email.get("to") or []),
            "messageId": email["ses_message_id"],
            "subject": str(email.get("subject") or ""),
        },
        "tags": tags,
    }
    at = _iso(now)
    feedback_id = f"{uuid.uuid4().hex}-000000"
    detail: dict[str, Any] = {"eventType": request.type, "mail": mail}
    if request.type == "Bounce":
        permanent = request.bounce_type == "Permanent"
        detail["bounce"] = {
            "bounceType": request.bounce_type,
            "bounceSubType": "General",
            "bouncedRecipients": [
                {
                    "emailAddress": recipient,
                    "action": "failed",
                    "status": "5.1.1" if permanent else "4.4.7",
                    "diagnosticCode": "smtp; 550 5.1.1 user unknown"
                    if permanent
                    else "smtp; 421 4.4.7 delivery time expired",
                }
            ],
            "timestamp": at,
            "feedbackId": feedback_id,
            "reportingMTA": "dsn; local.ses",
        }
    elif request.type == "Complaint":
        detail["complaint"] = {
            "complainedRecipients": [{"emailAddress": recipient}],
            "timestamp": at,
            "feedbackId": feedback_id,
            "complaintFeedbackType": "abuse",
            "arrivalDate": at,
        }
    else:
        detail["delivery"] = {
            "timestamp": at,
            "processingTimeMillis": max(0, int((now - float(email["at"])) * 1000)),
            "recipients": [recipient],
            "smtpResponse": "250 2.6.0 Message received",
            "reportingMTA": "local.ses",
        }
    return detail


def bus_entry(request: SesEventRequest, detail: dict[str, Any], now: float) -> dict[str, Any]:
    """The PutEvents entry SES makes of it (the bus adds id, account, region, time)."""
    return {
        "Source": "aws.ses",
        "DetailType": EVENT_TYPES[request.type][1],
        "Detail": json.dumps(detail),
        "Resources": [],
        "Time": _iso(now, millis=False),
    }


def matching_type(request: SesEventRequest) -> str:
    """The event's name in an event destination's MatchingEventTypes."""
    return EVENT_TYPES[request.type][0]
