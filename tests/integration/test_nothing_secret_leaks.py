"""No key, email, name, phone or attribute value of anyone leaves in a trace or a log.

The main flows run over the whole stack in this process (the local API Gateway and authorizer,
the stream, the queues, the sender), with the real X-Ray SDK enabled and recording every
document it would send (botocore patched, as deployed), and every logger at DEBUG. Then not one
of the test data's secrets or personal values may appear in what was recorded.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import json
import logging
import os
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from aws_xray_sdk import global_sdk_config
from aws_xray_sdk.core import patch, xray_recorder
from aws_xray_sdk.core.emitters.udp_emitter import UDPEmitter

from infra.local.apigw import HttpRequest, HttpResponse
from infra.local.ses_events import SesEventRequest
from infra.local.stack import Keys, LocalStack

ADMIN_KEY = "sk_admin_leaktest_SECRET_0123456789abcdef"
INGEST_KEY = "sk_ingest_leaktest_SECRET_0123456789abcde"
IDENTITY_SECRET = "identity-SECRET-leaktest-0123456789"
PEOPLE = [
    {
        "user_id": "u-leak-1",
        "email": "ada.secret@example.com",
        "name": "Ada Secretname",
        "phone": "+44 1111 222333",
    },
    {
        "user_id": "u-leak-2",
        "email": "grace.hidden@example.com",
        "name": "Grace Hiddenname",
        "phone": "+1 555 0199",
    },
]
ATTRIBUTE_VALUE = "plan-value-SECRET"
SEGMENT_PERSON = {"email": "linus.sourced@example.com", "name": "Linus Sourcename", "phone": "+46 8 555 0100"}


class _Recording(UDPEmitter):
    """Keeps every segment document the SDK would send to the daemon."""

    def __init__(self) -> None:
        super().__init__()
        self.documents: list[str] = []

    def send_entity(self, entity: Any) -> None:
        self.documents.append(entity.serialize())


def _in_a_segment(handler: Any) -> Any:
    """As Lambda does, a segment per invocation, in the thread that runs it (the local gateway
    runs each request in a thread of its own)."""

    def invoke(event: Any, context: Any) -> Any:
        xray_recorder.begin_segment("invocation")
        try:
            return handler(event, context)
        finally:
            xray_recorder.end_segment()

    return invoke


@pytest.fixture
def recorded() -> Iterator[tuple[Any, _Recording, io.StringIO]]:
    from segmentation import clock
    from segmentation.storage import attributes, secrets
    from segmentation.storage import aws as storage_aws

    saved = dict(os.environ)
    storage_aws.reset()
    attributes.clear_cache()
    secrets.clear_cache()
    stack = LocalStack(
        keys=Keys(admin_key=ADMIN_KEY, ingest_key=INGEST_KEY, identity_secret=IDENTITY_SECRET),
        parameters={"SenderEmail": "no-reply@example.com"},
    )
    emitter = _Recording()
    logs = io.StringIO()
    handler = logging.StreamHandler(logs)
    handler.setLevel(logging.DEBUG)
    root = logging.getLogger()
    # Our own loggers at DEBUG (third-party ones keep their level, as deployed).
    ours = [logging.getLogger("segmentation"), logging.getLogger("infra")]
    try:
        stack.start()
        global_sdk_config.set_sdk_enabled(True)
        xray_recorder.configure(
            emitter=emitter, context_missing="LOG_ERROR", sampling=False, streaming_threshold=1
        )
        patch(["botocore"])
        root.addHandler(handler)
        for logger in ours:
            logger.setLevel(logging.DEBUG)
        for name, module in list(sys.modules.items()):
            if name.startswith("local_lambda_") and hasattr(module, "logger"):
                module.logger.setLevel("DEBUG")
                module.logger.registered_handler.setStream(logs)
        for function in stack.functions.values():
            function.handler = _in_a_segment(function.handler)
        yield stack, emitter, logs
    finally:
        global_sdk_config.set_sdk_enabled(False)
        root.removeHandler(handler)
        for logger in ours:
            logger.setLevel(logging.NOTSET)
        stack.stop()
        clock.set_offset_seconds(0)
        os.environ.clear()
        os.environ.update(saved)
        storage_aws.reset()
        attributes.clear_cache()
        secrets.clear_cache()


def _call(
    stack: LocalStack, method: str, path: str, body: Any = None, key: str | None = None, **headers: str
) -> HttpResponse:
    sent = [("Content-Type", "application/json"), *headers.items()]
    if key:
        sent.append(("Authorization", f"Bearer {key}"))
    raw = json.dumps(body).encode() if body is not None else b""
    return stack.handle(HttpRequest(method=method, path=path, headers=sent, body=raw))


def test_no_secret_or_personal_value_is_traced_or_logged(
    recorded: tuple[Any, _Recording, io.StringIO],
) -> None:
    stack, emitter, logs = recorded
    keys = [ADMIN_KEY, INGEST_KEY]
    for role in ("read", "write"):
        created = _call(stack, "POST", "/v1/api_keys", {"role": role, "name": "leak test"}, ADMIN_KEY)
        assert created.status == 201
        keys.append(created.json()["key"])
    write_key = keys[-1]
    company = _call(
        stack, "POST", "/v1/companies", {"company_id": "acme", "name": "Acme Secretcorp"}, INGEST_KEY
    )
    assert company.status == 201
    for person in PEOPLE:
        body = {**person, "company_ids": ["acme"], "custom_attributes": {"plan": ATTRIBUTE_VALUE}}
        assert _call(stack, "POST", "/v1/users", body, INGEST_KEY).status == 201
    stack.drain()
    user_hash = hmac.new(IDENTITY_SECRET.encode(), b"u-leak-1", hashlib.sha256).hexdigest()
    assert (
        _call(stack, "POST", "/v1/users/u-leak-1/logins", {}, None, **{"X-User-Hash": user_hash}).status
        == 200
    )
    assert _call(stack, "GET", "/v1/users/u-leak-2", None, keys[2]).status == 200
    plan = {"field": "custom_attributes.plan", "op": "eq", "value": ATTRIBUTE_VALUE}
    assert _call(stack, "POST", "/v1/users/search", {"filter": plan}, keys[2]).status == 200
    assert _call(stack, "POST", "/v1/users/count", {"filter": plan}, keys[2]).status == 200
    segment = _call(stack, "POST", "/v1/segments", {"name": "Leak test", "filter": plan}, write_key)
    assert segment.status == 201
    segment_id = segment.json()["id"]
    assert _call(stack, "GET", f"/v1/segments/{segment_id}/members", None, keys[2]).status == 200
    for channel in ("email", "in_app"):
        message = _call(
            stack,
            "POST",
            "/v1/messages",
            {
                "name": "Hello",
                "type": "manual",
                "channel": channel,
                "audience": {"segment_id": segment_id},
                "subject": "Hi {{ user.name }}",
                "body": "Dear {{ user.name }} at {{ company.name }}: {{ user.email }}",
            },
            write_key,
        )
        assert message.status == 201
        assert (
            _call(stack, "POST", f"/v1/messages/{message.json()['id']}/send", None, write_key).status == 202
        )
    preview = {"channel": "email", "subject": "x", "body": "{{ user.phone }}", "user_id": "u-leak-1"}
    assert _call(stack, "POST", "/v1/messages/preview", preview, write_key).status == 200
    too_long = {"user_id": "u-leak-3", "email": "x" * 300 + PEOPLE[0]["email"]}
    assert _call(stack, "POST", "/v1/users", too_long, INGEST_KEY).status == 422
    assert _call(stack, "GET", "/v1/users/u-leak-1", None, "sk_wrong_" + ADMIN_KEY).status == 401
    # The Segment routes: the key in the body and as Basic auth, traits, a rejected message, a bad key.
    segment_batch = {
        "writeKey": INGEST_KEY,
        "batch": [
            {"type": "identify", "userId": "u-leak-4", "traits": SEGMENT_PERSON},
            {"type": "identify", "userId": "u-leak-4", "traits": {"plan": 7}},  # plan holds strings
            {
                "type": "track",
                "userId": "u-leak-4",
                "event": "Paid",
                "properties": {"card": SEGMENT_PERSON["phone"]},
            },
        ],
    }
    answer = _call(stack, "POST", "/v1/batch", segment_batch)
    assert answer.status == 200 and answer.json()["accepted"] == 2
    basic = "Basic " + base64.b64encode(f"{INGEST_KEY}:".encode()).decode()
    assert (
        _call(stack, "POST", "/v1/identify", {"userId": "u-leak-4"}, None, Authorization=basic).status == 200
    )
    assert (
        _call(stack, "POST", "/v1/track", {**segment_batch, "writeKey": "sk_wrong_" + INGEST_KEY}).status
        == 401
    )
    stack.drain()
    assert len(stack.outbox()) == 2  # the flows really ran: both emails went out
    # SES reports back (its events carry addresses and subjects) through EventBridge.
    stack.report_ses_event(SesEventRequest(type="Bounce", email=PEOPLE[0]["email"]))
    stack.report_ses_event(SesEventRequest(type="Complaint", email=PEOPLE[1]["email"]))
    stack.drain()
    statuses = [_call(stack, "GET", f"/v1/users/{p['user_id']}", None, keys[2]).json() for p in PEOPLE]
    assert [user["email_status"] for user in statuses] == ["bounced", "complained"]
    assert (
        _call(stack, "GET", "/v1/users/u-leak-1/messages", None, None, **{"X-User-Hash": user_hash}).status
        == 200
    )
    xray_recorder.end_segment()

    traces = "\n".join(emitter.documents)
    logged = logs.getvalue()
    assert traces and "dynamodb" in traces.lower()  # the recording works: AWS calls are traced
    secrets = [*keys, IDENTITY_SECRET, ATTRIBUTE_VALUE, "Acme Secretcorp", user_hash]
    secrets += [person[field] for person in [*PEOPLE, SEGMENT_PERSON] for field in ("email", "name", "phone")]
    secrets.append(basic.split()[1])
    found = {
        secret: where
        for secret in secrets
        for where, text in (("traces", traces), ("logs", logged))
        if secret in text
    }
    assert found == {}
