"""Messages through API Gateway events: shapes, roles, state changes, validation (API.md, Messages)."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from segmentation.auth import access
from segmentation.messaging import auto, sender
from segmentation.storage import attributes

from tests.support.apigw import Reply, call

KEYS = {role: f"sk_{role}_messages_test_key_0000000000000" for role in ("ingest", "read", "write", "admin")}
TRIAL = {"field": "custom_attributes.plan", "op": "eq", "value": "trial"}


@pytest.fixture
def api(aws: object) -> None:
    for role, key in KEYS.items():
        access.install_key(key, role, role)
    attributes.register("users", {"plan": "string"})
    auto.reset_cache()
    sender.reset_cache()
    boto3.client("sesv2").create_email_identity(EmailIdentity="no-reply@example.com")


def message_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "Trial welcome",
        "type": "manual",
        "channel": "email",
        "audience": {"filter": TRIAL},
        "subject": "Welcome, {{ user.name }}",
        "body": "Hi {{ user.name | default: 'there' }}",
    }
    body.update(overrides)
    return body


def create(role: str = "write", **overrides: Any) -> Reply:
    return call("POST", "/v1/messages", key=KEYS[role], body=message_body(**overrides))


def created(**overrides: Any) -> dict[str, Any]:
    reply = create(**overrides)
    assert reply.status == 201, reply.body
    return dict(reply.body)


def test_create_returns_a_draft_shaped_as_the_contract_says(api: None) -> None:
    message = created()
    assert message["id"].startswith("msg_")
    assert message["state"] == "draft"
    assert message["stats"] == {
        "queued": 0,
        "sent": 0,
        "skipped": 0,
        "failed": 0,
        "delivered": 0,
        "bounced": 0,
        "complained": 0,
    }
    assert message["audience"] == {"filter": TRIAL}
    assert message["sent_at"] is None and message["created_at"].endswith("Z")
    assert message["paused_reason"] is None
    assert set(message) == {
        "id", "name", "type", "channel", "audience", "subject", "body", "state", "stats", "paused_reason",
        "created_at", "updated_at", "sent_at",
    }  # fmt: skip
    fetched = call("GET", f"/v1/messages/{message['id']}", key=KEYS["read"])
    assert fetched.status == 200 and fetched.body == message
    listed = call("GET", "/v1/messages", key=KEYS["read"])
    assert listed.status == 200 and [m["id"] for m in listed.body["data"]] == [message["id"]]
    assert listed.body["next_cursor"] is None


@pytest.mark.parametrize(
    ("overrides", "path"),
    [
        ({"subject": "Hi {{ user.name "}, "subject"),
        ({"body": "{% if %}x{% endif %}"}, "body"),
        ({"body": "{{ user.name | shout }}"}, "body"),
        ({"subject": None}, "subject"),
        ({"audience": {}}, "audience"),
        ({"audience": {"filter": {"field": "nope", "op": "eq", "value": 1}}}, "audience.filter.field"),
        ({"audience": {"segment_id": "seg_missing"}}, "audience.segment_id"),
        ({"type": "weekly"}, "type"),
        ({"channel": "sms"}, "channel"),
        ({"extra": 1}, "extra"),
    ],
)
def test_invalid_messages_are_422_naming_the_field(api: None, overrides: dict[str, Any], path: str) -> None:
    reply = create(**overrides)
    assert reply.status == 422, reply.body
    assert reply.body["error"]["code"] in ("invalid_request", "invalid_filter")
    assert path in [detail["path"] for detail in reply.body["error"]["details"]]


def test_in_app_messages_need_no_subject(api: None) -> None:
    assert create(channel="in_app", subject=None).status == 201


def test_malformed_json_is_400(api: None) -> None:
    reply = call("POST", "/v1/messages", key=KEYS["write"], raw_body="{nope")
    assert reply.status == 400


@pytest.mark.parametrize(("role", "status"), [("ingest", 403), ("read", 403), ("write", 201), ("admin", 201)])
def test_who_may_create(api: None, role: str, status: int) -> None:
    assert create(role=role).status == status


def test_manual_send_is_202_once_then_409(api: None) -> None:
    message = created()
    assert call("POST", f"/v1/messages/{message['id']}/send", key=KEYS["read"]).status == 403
    first = call("POST", f"/v1/messages/{message['id']}/send", key=KEYS["write"])
    assert first.status == 202 and first.body["state"] == "sent" and first.body["sent_at"] is not None
    second = call("POST", f"/v1/messages/{message['id']}/send", key=KEYS["write"])
    assert second.status == 409


def test_actions_of_the_other_type_are_409(api: None) -> None:
    manual, auto_message = created(), created(type="auto")
    live_on_manual = call("POST", f"/v1/messages/{manual['id']}/live", key=KEYS["write"])
    assert live_on_manual.status == 409 and "manual" in live_on_manual.body["error"]["message"]
    assert call("POST", f"/v1/messages/{manual['id']}/pause", key=KEYS["write"]).status == 409
    send_on_auto = call("POST", f"/v1/messages/{auto_message['id']}/send", key=KEYS["write"])
    assert send_on_auto.status == 409 and "auto" in send_on_auto.body["error"]["message"]


def test_live_pause_and_resume(api: None) -> None:
    message = created(type="auto")
    live = call("POST", f"/v1/messages/{message['id']}/live", key=KEYS["write"])
    assert live.status == 200 and live.body["state"] == "live"
    paused = call("POST", f"/v1/messages/{message['id']}/pause", key=KEYS["write"])
    assert paused.status == 200 and paused.body["state"] == "paused"
    again = call("POST", f"/v1/messages/{message['id']}/live", key=KEYS["admin"])
    assert again.status == 200 and again.body["state"] == "live"


def test_only_admins_delete_and_then_it_is_gone(api: None) -> None:
    message = created()
    assert call("DELETE", f"/v1/messages/{message['id']}", key=KEYS["write"]).status == 403
    assert call("DELETE", f"/v1/messages/{message['id']}", key=KEYS["admin"]).status == 204
    assert call("GET", f"/v1/messages/{message['id']}", key=KEYS["read"]).status == 404
    assert call("DELETE", f"/v1/messages/{message['id']}", key=KEYS["admin"]).status == 404
    assert call("GET", "/v1/messages", key=KEYS["read"]).body["data"] == []


def test_unknown_message_is_404(api: None) -> None:
    assert call("GET", "/v1/messages/msg_nope", key=KEYS["read"]).status == 404
    assert call("POST", "/v1/messages/msg_nope/send", key=KEYS["write"]).status == 404
    assert call("GET", "/v1/messages/msg_nope/deliveries", key=KEYS["read"]).status == 404


def test_deliveries_page_with_a_cursor(api: None) -> None:
    for index in range(3):
        user = {
            "user_id": f"u{index}",
            "email": f"u{index}@example.com",
            "custom_attributes": {"plan": "trial"},
        }
        assert call("POST", "/v1/users", key=KEYS["ingest"], body=user).status in (200, 201)
    message = created()
    assert call("POST", f"/v1/messages/{message['id']}/send", key=KEYS["write"]).status == 202
    from segmentation.jobs import FanoutJob
    from segmentation.messaging import fanout

    from tests.support.messaging import jobs_in

    fanout.run_job(FanoutJob.model_validate(jobs_in(str(__import__("os").environ["FANOUT_QUEUE_URL"]))[0]))

    seen: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        query = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        reply = call("GET", f"/v1/messages/{message['id']}/deliveries", key=KEYS["read"], query=query)
        assert reply.status == 200, reply.body
        seen += reply.body["data"]
        cursor = reply.body["next_cursor"]
        if cursor is None:
            break
    assert [d["user_id"] for d in seen] == ["u0", "u1", "u2"]
    assert all(d["status"] == "queued" and d["reason"] is None and d["at"].endswith("Z") for d in seen)
    bad = call("GET", f"/v1/messages/{message['id']}/deliveries", key=KEYS["read"], query={"cursor": "x!"})
    assert (bad.status, bad.error_code) == (400, "invalid_cursor")


def _segment(name: str) -> str:
    reply = call("POST", "/v1/segments", key=KEYS["write"], body={"name": name, "filter": TRIAL})
    assert reply.status == 201, reply.body
    return str(reply.body["id"])


@pytest.mark.parametrize(
    "audience_of",
    [
        lambda sid: {"segment_id": sid},
        lambda sid: {"filter": {"field": "segment", "op": "in_segment", "value": sid}},
    ],
)
def test_a_segment_named_by_a_live_or_paused_message_cannot_be_deleted(api: None, audience_of: Any) -> None:
    segment_id = _segment("Trials")
    message = created(type="auto", audience=audience_of(segment_id))
    assert call("POST", f"/v1/messages/{message['id']}/live", key=KEYS["write"]).status == 200
    for _ in ("live", "paused"):
        reply = call("DELETE", f"/v1/segments/{segment_id}", key=KEYS["admin"])
        assert reply.status == 409 and reply.body["error"]["code"] == "segment_in_use"
        assert message["id"] in reply.body["error"]["message"]
        assert [d.get("message_id") for d in reply.body["error"]["details"]] == [message["id"]]
        assert call("POST", f"/v1/messages/{message['id']}/pause", key=KEYS["write"]).status == 200
    assert call("DELETE", f"/v1/messages/{message['id']}", key=KEYS["admin"]).status == 204
    assert call("DELETE", f"/v1/segments/{segment_id}", key=KEYS["admin"]).status == 204


def test_a_draft_naming_a_segment_does_not_hold_it_but_cannot_go_live_once_it_is_gone(api: None) -> None:
    segment_id = _segment("Trials")
    message = created(
        type="auto", audience={"filter": {"field": "segment", "op": "in_segment", "value": segment_id}}
    )
    assert call("DELETE", f"/v1/segments/{segment_id}", key=KEYS["admin"]).status == 204
    reply = call("POST", f"/v1/messages/{message['id']}/live", key=KEYS["write"])
    assert reply.status == 409 and reply.body["error"]["code"] == "audience_segment_missing"
    assert segment_id in reply.body["error"]["message"]
    assert call("GET", f"/v1/messages/{message['id']}", key=KEYS["read"]).body["state"] == "draft"


def test_a_message_going_live_during_a_segment_delete_makes_the_delete_a_409(
    api: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from segmentation.segments import service as segment_service

    segment_id = _segment("Trials")
    message = created(type="auto", audience={"segment_id": segment_id})
    real = segment_service.dependent_messages
    raced: list[str] = []

    def then_go_live(sid: str) -> list[str]:
        found = real(sid)
        if not raced:  # between the delete's check and its write, the message goes live
            raced.append(sid)
            assert call("POST", f"/v1/messages/{message['id']}/live", key=KEYS["write"]).status == 200
        return found

    monkeypatch.setattr(segment_service, "dependent_messages", then_go_live)
    reply = call("DELETE", f"/v1/segments/{segment_id}", key=KEYS["admin"])
    assert raced == [segment_id]
    assert reply.status == 409 and reply.body["error"]["code"] == "segment_in_use", reply.body
    assert call("GET", f"/v1/segments/{segment_id}", key=KEYS["read"]).status == 200
