"""SES's events as EventBridge delivers them, read into what the feedback function acts on."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from segmentation.messaging import feedback, ses_events
from segmentation.messaging.ses_events import NotAnSesEvent, SesFeedback

SAMPLE = json.loads(
    (Path(__file__).resolve().parents[3] / "events" / "EmailFeedbackFunction.json").read_text()
)


def _with(detail_type: str, event_type: str, part: str, record: dict[str, Any]) -> dict[str, Any]:
    event = copy.deepcopy(SAMPLE)
    event["detail-type"] = detail_type
    del event["detail"]["bounce"]
    event["detail"]["eventType"] = event_type
    event["detail"][part] = record
    return event


def test_a_permanent_bounce_names_only_its_bounced_recipients_not_every_destination() -> None:
    parsed = ses_events.parse(SAMPLE)
    assert parsed == SesFeedback(
        kind="bounced",
        ses_message_id="0100019c8a1b2c3d-5f6a7b8c-9d0e-4f1a-b2c3-d4e5f6a7b8c9-000000",
        recipients=("ada@example.com",),  # destination also lists grace@: she did not bounce
        permanent=True,
        sent_at=1795860060.012,
    )


@pytest.mark.parametrize(("bounce_type", "permanent"), [("Transient", False), ("Undetermined", False)])
def test_only_a_permanent_bounce_is_permanent(bounce_type: str, permanent: bool) -> None:
    event = copy.deepcopy(SAMPLE)
    event["detail"]["bounce"]["bounceType"] = bounce_type
    parsed = ses_events.parse(event)
    assert parsed is not None and parsed.kind == "bounced" and parsed.permanent is permanent


def test_a_complaint_and_a_delivery_name_their_own_recipients() -> None:
    complaint = _with(
        "Email Complaint Received",
        "Complaint",
        "complaint",
        {"complainedRecipients": [{"emailAddress": "grace@example.com"}], "complaintFeedbackType": "abuse"},
    )
    parsed = ses_events.parse(complaint)
    assert parsed is not None and (parsed.kind, parsed.recipients, parsed.permanent) == (
        "complained",
        ("grace@example.com",),
        False,
    )
    delivery = _with("Email Delivered", "Delivery", "delivery", {"recipients": ["ada@example.com"]})
    parsed = ses_events.parse(delivery)
    assert parsed is not None and (parsed.kind, parsed.recipients) == ("delivered", ("ada@example.com",))


def test_other_ses_email_events_are_not_feedback() -> None:
    opened = _with("Email Opened", "Open", "open", {"ipAddress": "192.0.2.1"})
    assert ses_events.parse(opened) is None


def test_a_missing_or_odd_timestamp_only_loses_the_send_time() -> None:
    event = copy.deepcopy(SAMPLE)
    event["detail"]["mail"]["timestamp"] = "yesterday"
    parsed = ses_events.parse(event)
    assert parsed is not None and parsed.sent_at is None
    del event["detail"]["mail"]["timestamp"]
    assert ses_events.parse(event) is not None


@pytest.mark.parametrize(
    "change",
    [
        lambda e: e.update(source="aws.events"),  # a scheduled event, say
        lambda e: e.pop("detail"),
        lambda e: e["detail"].pop("mail"),
        lambda e: e["detail"]["mail"].update(messageId=""),
        lambda e: e["detail"].pop("bounce"),  # a bounce that does not say who bounced
        lambda e: e["detail"]["bounce"].update(bouncedRecipients=[{"address": "x"}]),
        lambda e: e.clear(),
    ],
)
def test_anything_else_is_not_an_ses_event(change: Any) -> None:
    event = copy.deepcopy(SAMPLE)
    change(event)
    with pytest.raises(NotAnSesEvent):
        ses_events.parse(event)


@pytest.mark.parametrize(
    ("seen", "shown"),
    [
        (None, None),
        (set(), None),
        ({"delivered"}, "delivered"),
        ({"delivered", "bounced"}, "bounced"),
        ({"bounced", "complained"}, "complained"),
        ({"complained", "delivered", "bounced"}, "complained"),
    ],
)
def test_a_delivery_shows_the_strongest_feedback_seen(seen: set[str] | None, shown: str | None) -> None:
    assert feedback.strongest(seen) == shown
