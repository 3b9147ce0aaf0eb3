"""Webhooks end to end in process: changes recorded → Changes stream → publisher → WebhookQueue →
sender → a real HTTP receiver on 127.0.0.1, signatures checked with the `standardwebhooks`
package. Retries follow the stack's clock (moved, never waited for)."""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from segmentation import clock
from segmentation.changes import deliveries, transport
from segmentation.settings import get_settings
from segmentation.storage import attributes, aws
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from tests.integration.upkeep_support import DAY, FakeContext, Stack, load_handler
from tests.support.apigw import Reply, call

PRO = {"field": "custom_attributes.plan", "op": "eq", "value": "pro"}


# --- a receiver ---------------------------------------------------------------------------------


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """Answers each POST with the next status of `answers` (the last one again when they run out)."""

    answers: list[int] = field(default_factory=lambda: [200])
    received: list[Received] = field(default_factory=list)
    hold: threading.Event | None = None  # set: the receiver waits for it before answering
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            state.received.append(Received({k.lower(): v for k, v in self.headers.items()}, body))
            if state.hold is not None:
                state.hold.wait(10)
            status = state.answers.pop(0) if len(state.answers) > 1 else state.answers[0]
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    if state.hold is not None:
        state.hold.set()
    server.shutdown()
    server.server_close()


# --- the pipeline -------------------------------------------------------------------------------


@dataclass
class Pipeline:
    stack: Stack
    keys: dict[str, str]

    def upkeep(self) -> None:
        """Users' stream → memberships and changes; Changes' stream → bus and deliveries."""
        membership = load_handler("membership_stream").lambda_handler
        records = self.stack.stream_records(self.stack.tables["UsersTable"])
        if records:
            assert membership({"Records": records}, FakeContext()) == {"batchItemFailures": []}
        self.publish()

    def publish(self, records: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
        publisher = load_handler("changes_publisher").lambda_handler
        records = self.stack.stream_records(self.stack.tables["ChangesTable"]) if records is None else records
        if records:
            assert publisher({"Records": records}, FakeContext()) == {"batchItemFailures": []}
        return records

    def send(self) -> list[str]:
        """Hand every visible WebhookQueue job to the sender; the outcomes, in order."""
        sender = load_handler("webhook_sender").lambda_handler
        sqs = aws.client("sqs")
        url = get_settings().webhook_queue_url
        outcomes: list[str] = []
        while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=5).get("Messages", []):
            for message in messages:
                job = json.loads(message["Body"])
                before = len(attempts_of(job["webhook_id"]))
                record = {
                    "messageId": message["MessageId"],
                    "receiptHandle": message["ReceiptHandle"],
                    "body": message["Body"],
                    "attributes": {},
                    "messageAttributes": {},
                    "eventSource": "aws:sqs",
                    "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:WebhookQueue",
                    "awsRegion": "us-east-1",
                    "md5OfBody": "",
                }
                assert sender({"Records": [record]}, FakeContext()) == {"batchItemFailures": []}
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
                outcomes.append("attempted" if len(attempts_of(job["webhook_id"])) > before else "skipped")
        return outcomes

    def retry_due(self) -> int:
        return int(load_handler("webhook_retry").lambda_handler({}, FakeContext())["queued"])

    def user(self, user_id: str, plan: str) -> None:
        body = {"user_id": user_id, "custom_attributes": {"plan": plan}}
        assert call("POST", "/v1/users", key=self.keys["ingest"], body=body).status in (200, 201)

    def segment(self, name: str = "Pro", filter_: dict[str, Any] = PRO) -> str:
        reply = call("POST", "/v1/segments", key=self.keys["write"], body={"name": name, "filter": filter_})
        assert reply.status == 201, reply.body
        return str(reply.body["id"])

    def webhook(self, url: str, **fields: Any) -> dict[str, Any]:
        reply = call("POST", "/v1/webhooks", key=self.keys["admin"], body={"url": url, **fields})
        assert reply.status == 201, reply.body
        body: dict[str, Any] = reply.body
        return body


def attempts_of(webhook_id: str) -> list[dict[str, Any]]:
    """The attempt rows of a webhook, straight from the table (no HTTP round trip per job)."""
    from segmentation.storage import webhooks

    items, _ = webhooks.attempts_page(webhook_id, 100, None)
    return items


@pytest.fixture
def pipeline(aws: Any, keys: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[Pipeline]:
    monkeypatch.setenv("WEBHOOK_ALLOW_LOCAL", "true")
    get_settings.cache_clear()
    attributes.register("users", {"plan": "string"})
    stack = Stack(
        tables=dict(aws.table_names),
        stream_arns={name: arn for arn, name in aws.stream_tables.items()},
        rebuild_queue_url=os.environ["REBUILD_QUEUE_URL"],
    )
    made = Pipeline(stack, keys)
    made.upkeep()  # the streams start empty
    yield made
    clock.set_offset_seconds(0)


def verified(hook: dict[str, Any], received: Received) -> Any:
    return Webhook(hook["secret"]).verify(received.body, received.headers)


# --- deliveries ---------------------------------------------------------------------------------


def test_each_post_is_signed_by_standard_webhooks_and_carries_the_changes(pipeline, receiver):
    seg = pipeline.segment()
    hook = pipeline.webhook(receiver.url, description="CRM")
    assert hook["secret"].startswith("whsec_") and hook["state"] == "enabled" and hook["segment_ids"] is None
    pipeline.user("u1", "pro")
    pipeline.upkeep()
    assert pipeline.send() == ["attempted"]
    (post,) = receiver.received
    document = verified(hook, post)
    assert document["type"] == "segment.membership.changed" and document["timestamp"].endswith("Z")
    changes = document["data"]["changes"]
    assert {(c["segment_id"], c["member_id"], c["change"], c["sequence"]) for c in changes} == {
        (seg, "u1", "entered", 1)
    }
    assert post.headers["content-type"] == "application/json"
    assert post.headers["webhook-id"].startswith("msg_")
    assert abs(int(post.headers["webhook-timestamp"]) - time.time()) < 60
    # A body changed in transit, or another secret, does not verify.
    with pytest.raises(WebhookVerificationError):
        Webhook(hook["secret"]).verify(post.body.replace(b"u1", b"u2"), post.headers)
    rotated = call("POST", f"/v1/webhooks/{hook['id']}/rotate_secret", key=pipeline.keys["admin"]).body
    assert rotated["secret"] != hook["secret"]
    with pytest.raises(WebhookVerificationError):
        Webhook(rotated["secret"]).verify(post.body, post.headers)
    shown = call("GET", f"/v1/webhooks/{hook['id']}", key=pipeline.keys["admin"]).body
    assert "secret" not in shown and shown["url"] == receiver.url

    # The next change is signed with the new secret only.
    pipeline.user("u1", "free")
    pipeline.upkeep()
    pipeline.send()
    assert verified(rotated, receiver.received[1])["data"]["changes"][0]["change"] == "exited"
    with pytest.raises(WebhookVerificationError):
        verified(hook, receiver.received[1])


def test_a_rebuild_moving_many_members_posts_them_a_hundred_at_a_time(pipeline, receiver):
    pipeline.segment()
    hook = pipeline.webhook(receiver.url)
    for n in range(130):
        pipeline.user(f"u{n:03d}", "pro")
    pipeline.upkeep()
    pipeline.send()
    sizes = sorted(len(verified(hook, post)["data"]["changes"]) for post in receiver.received)
    assert sum(sizes) == 130 and max(sizes) <= deliveries.CHANGES_PER_POST and len(sizes) == 2


def test_only_the_segments_named_and_only_changes_made_while_it_exists_are_sent(pipeline, receiver):
    pro = pipeline.segment()
    other = pipeline.segment("Free", {"field": "custom_attributes.plan", "op": "eq", "value": "free"})
    pipeline.user("early", "pro")
    pipeline.upkeep()  # recorded before any webhook exists
    hook = pipeline.webhook(receiver.url, segment_ids=[pro])
    assert hook["segment_ids"] == [pro]
    pipeline.user("late", "pro")
    pipeline.user("freebie", "free")
    pipeline.upkeep()
    pipeline.send()
    sent = [c for post in receiver.received for c in verified(hook, post)["data"]["changes"]]
    assert [(c["segment_id"], c["member_id"]) for c in sent] == [(pro, "late")]
    assert other not in {c["segment_id"] for c in sent}


def test_a_changes_batch_published_twice_makes_one_delivery(pipeline, receiver):
    pipeline.segment()
    pipeline.webhook(receiver.url)
    pipeline.user("u1", "pro")
    membership = load_handler("membership_stream").lambda_handler
    membership({"Records": pipeline.stack.stream_records(pipeline.stack.tables["UsersTable"])}, FakeContext())
    records = pipeline.publish()
    pipeline.publish(records)  # the stream hands the same batch again
    assert pipeline.send() == ["attempted"]
    assert len(receiver.received) == 1


# --- retries, timeouts, disabling ---------------------------------------------------------------


def test_a_failing_receiver_is_retried_with_backoff_until_it_recovers(pipeline, receiver):
    receiver.answers = [500, 429, 200]
    pipeline.segment()
    hook = pipeline.webhook(receiver.url)
    pipeline.user("u1", "pro")
    pipeline.upkeep()
    assert pipeline.send() == ["attempted"]  # 500
    assert pipeline.retry_due() == 0  # the next attempt is 5 s away on the stack's clock
    clock.set_offset_seconds(6)
    assert pipeline.retry_due() == 1
    assert pipeline.send() == ["attempted"]  # 429
    clock.set_offset_seconds(6 + 200)
    assert pipeline.retry_due() == 0  # the third attempt waits 5 minutes
    clock.set_offset_seconds(6 + 301)
    assert pipeline.retry_due() == 1
    assert pipeline.send() == ["attempted"]  # 200
    assert [p.headers["webhook-id"] for p in receiver.received] == [
        receiver.received[0].headers["webhook-id"]
    ] * 3
    for post in receiver.received:  # each attempt signed at its own real time, whatever the stack's clock
        assert abs(int(post.headers["webhook-timestamp"]) - time.time()) < 60
        verified(hook, post)
    clock.set_offset_seconds(10 * DAY)
    assert pipeline.retry_due() == 0  # delivered: nothing more, ever

    page = call("GET", f"/v1/webhooks/{hook['id']}/deliveries", key=pipeline.keys["admin"]).body
    assert [(a["status_code"], a["outcome"]) for a in page["data"]] == [
        (200, "delivered"),
        (429, "failed"),
        (500, "failed"),
    ]
    assert {a["webhook_id_header"] for a in page["data"]} == {receiver.received[0].headers["webhook-id"]}
    assert all(a["changes"] == 1 and a["duration_ms"] >= 0 for a in page["data"])


def test_no_answer_within_the_timeout_is_a_failed_attempt_retried_later(pipeline, receiver, monkeypatch):
    monkeypatch.setattr(transport, "TIMEOUT_SECONDS", 0.3)
    monkeypatch.setattr(transport.post, "__defaults__", (0.3,))
    receiver.hold = threading.Event()  # the receiver answers only once released
    pipeline.segment()
    hook = pipeline.webhook(receiver.url)
    pipeline.user("u1", "pro")
    pipeline.upkeep()
    pipeline.send()
    receiver.hold.set()
    (attempt,) = attempts_of(hook["id"])
    assert attempt["outcome"] == "failed" and attempt["error"] == "timeout" and "status_code" not in attempt
    clock.set_offset_seconds(6)
    assert pipeline.retry_due() == 1


def test_a_delayed_copy_of_a_job_never_sends_twice(pipeline, receiver):
    receiver.answers = [500, 200]
    pipeline.segment()
    pipeline.webhook(receiver.url)
    pipeline.user("u1", "pro")
    pipeline.upkeep()
    sqs = aws.client("sqs")
    url = get_settings().webhook_queue_url
    first = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1)["Messages"][0]
    sqs.send_message(QueueUrl=url, MessageBody=first["Body"])  # SQS hands the job over twice
    sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=first["ReceiptHandle"], VisibilityTimeout=0)
    assert sorted(pipeline.send()) == ["attempted", "skipped"]
    assert len(receiver.received) == 1


def test_an_endpoint_failing_for_three_days_is_disabled_and_can_be_enabled_again(pipeline, receiver):
    receiver.answers = [503]
    pipeline.segment()
    hook = pipeline.webhook(receiver.url)
    pipeline.user("u1", "pro")
    pipeline.upkeep()
    pipeline.send()
    for offset in (DAY, 2 * DAY):  # failing for one, then two days: still on
        clock.set_offset_seconds(offset)
        pipeline.user("u1", "free" if offset == DAY else "pro")
        pipeline.upkeep()
        pipeline.retry_due()
        pipeline.send()
    assert call("GET", f"/v1/webhooks/{hook['id']}", key=pipeline.keys["admin"]).body["state"] == "enabled"
    clock.set_offset_seconds(3 * DAY + 60)
    pipeline.user("u1", "free")
    pipeline.upkeep()
    pipeline.retry_due()
    pipeline.send()
    shown = call("GET", f"/v1/webhooks/{hook['id']}", key=pipeline.keys["admin"]).body
    assert shown["state"] == "disabled" and "3 days" in shown["disabled_reason"]

    # Disabled: nothing more is sent, not even the retries that were pending.
    posts = len(receiver.received)
    pipeline.user("u1", "pro")
    pipeline.upkeep()
    clock.set_offset_seconds(5 * DAY)
    pipeline.retry_due()
    pipeline.send()
    assert len(receiver.received) == posts

    receiver.answers = [200]
    enabled = call("PUT", f"/v1/webhooks/{hook['id']}", key=pipeline.keys["admin"], body={"state": "enabled"})
    assert (
        enabled.status == 200
        and enabled.body["state"] == "enabled"
        and enabled.body["disabled_reason"] is None
    )
    pipeline.user("u1", "free")
    pipeline.upkeep()
    pipeline.send()
    assert verified(hook, receiver.received[-1])["data"]["changes"][0]["change"] == "exited"


# --- where a webhook may point ------------------------------------------------------------------


def fake_dns(monkeypatch: pytest.MonkeyPatch, answers: dict[str, str]) -> None:
    real = socket.getaddrinfo

    def getaddrinfo(host: str, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host in answers:
            family = socket.AF_INET6 if ":" in answers[host] else socket.AF_INET
            return [(family, socket.SOCK_STREAM, 6, "", (answers[host], port))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


@pytest.mark.parametrize(
    "url",
    [
        "http://hooks.example.com/x",  # not https
        "https://127.0.0.1/x",
        "https://localhost/x",
        "https://10.0.0.7/x",
        "https://192.168.1.1/x",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/x",
        "https://[fd00:ec2::254]/x",
        "https://[::ffff:10.0.0.1]/x",
        "https://100.64.0.1/x",
        "https://internal.example.com/x",  # resolves to a private address
        "https://user:secret@hooks.example.com/x",
        "ftp://hooks.example.com/x",
        "https:///x",
    ],
)
def test_deployed_a_url_must_be_https_to_a_public_address(aws, keys, monkeypatch, url):
    fake_dns(monkeypatch, {"internal.example.com": "10.1.2.3", "hooks.example.com": "93.184.215.14"})
    reply = call("POST", "/v1/webhooks", key=keys["admin"], body={"url": url})
    assert reply.status == 422, reply.body
    assert reply.body["error"]["details"][0]["path"] == "url"


def test_deployed_a_public_https_url_is_accepted(aws, keys, monkeypatch):
    fake_dns(monkeypatch, {"hooks.example.com": "93.184.215.14"})
    reply = call("POST", "/v1/webhooks", key=keys["admin"], body={"url": "https://hooks.example.com/x"})
    assert reply.status == 201, reply.body


def test_locally_only_loopback_http_is_added(pipeline, receiver):
    assert call("POST", "/v1/webhooks", key=pipeline.keys["admin"], body={"url": receiver.url}).status == 201
    for url in ("http://10.0.0.7/x", "http://hooks.example.com/x", "https://169.254.169.254/x"):
        assert call("POST", "/v1/webhooks", key=pipeline.keys["admin"], body={"url": url}).status == 422, url


def test_a_name_that_resolves_to_a_private_address_at_send_time_is_not_called(
    pipeline, receiver, monkeypatch
):
    """Saved while public; by the time of the POST its name points inside: no connection is made."""
    pipeline.segment()
    monkeypatch.setenv("WEBHOOK_ALLOW_LOCAL", "false")
    get_settings.cache_clear()
    fake_dns(monkeypatch, {"hooks.example.com": "93.184.215.14"})
    hook = pipeline.webhook(f"https://hooks.example.com:{receiver.port}/x")
    fake_dns(monkeypatch, {"hooks.example.com": "127.0.0.1"})  # rebinding
    pipeline.user("u1", "pro")
    pipeline.upkeep()
    pipeline.send()
    assert receiver.received == []
    (attempt,) = attempts_of(hook["id"])
    assert attempt["outcome"] == "failed" and "not a public address" in attempt["error"]
    clock.set_offset_seconds(6)
    assert pipeline.retry_due() == 1  # retried later, as any failure


# --- the API ------------------------------------------------------------------------------------


def test_webhooks_are_for_admins_and_answer_their_statuses(pipeline, receiver):
    for role in ("read", "write", "ingest"):
        assert call("GET", "/v1/webhooks", key=pipeline.keys[role]).status == 403
        assert call("POST", "/v1/webhooks", key=pipeline.keys[role], body={"url": receiver.url}).status == 403
    first = pipeline.webhook(receiver.url, description="one")
    second = pipeline.webhook(receiver.url, description="two")
    listed = call("GET", "/v1/webhooks", key=pipeline.keys["admin"], query={"limit": "1"}).body
    assert [h["id"] for h in listed["data"]] == [first["id"]] and listed["next_cursor"]
    more = call("GET", "/v1/webhooks", key=pipeline.keys["admin"], query={"cursor": listed["next_cursor"]})
    assert [h["id"] for h in more.body["data"]] == [second["id"]]
    assert all("secret" not in h for h in listed["data"] + more.body["data"])

    bad: list[tuple[str, str, Any]] = [
        ("POST", "/v1/webhooks", {"url": receiver.url, "segment_ids": ["seg_missing"]}),
        ("POST", "/v1/webhooks", {"url": receiver.url, "segment_ids": []}),
        ("POST", "/v1/webhooks", {"url": receiver.url, "colour": "red"}),
        ("PUT", f"/v1/webhooks/{first['id']}", {"state": "paused"}),
    ]
    for method, path, body in bad:
        reply: Reply = call(method, path, key=pipeline.keys["admin"], body=body)
        assert reply.status == 422, (method, path, body, reply.body)
    assert call("DELETE", f"/v1/webhooks/{first['id']}", key=pipeline.keys["admin"]).status == 204
    for method, path in (
        ("GET", f"/v1/webhooks/{first['id']}"),
        ("DELETE", f"/v1/webhooks/{first['id']}"),
        ("POST", f"/v1/webhooks/{first['id']}/rotate_secret"),
        ("GET", f"/v1/webhooks/{first['id']}/deliveries"),
    ):
        assert call(method, path, key=pipeline.keys["admin"]).status == 404, (method, path)
    reply = call("PUT", f"/v1/webhooks/{first['id']}", key=pipeline.keys["admin"], body={"state": "enabled"})
    assert reply.status == 404


def test_a_workspace_has_at_most_fifty_webhooks(pipeline, receiver, monkeypatch):
    from segmentation.changes import webhooks

    monkeypatch.setattr(webhooks, "MAX_WEBHOOKS", 3)
    made = [pipeline.webhook(receiver.url) for _ in range(3)]
    reply = call("POST", "/v1/webhooks", key=pipeline.keys["admin"], body={"url": receiver.url})
    assert reply.status == 422 and reply.error_code == "limit_reached"
    call("DELETE", f"/v1/webhooks/{made[0]['id']}", key=pipeline.keys["admin"])
    assert call("POST", "/v1/webhooks", key=pipeline.keys["admin"], body={"url": receiver.url}).status == 201


def test_the_deliveries_log_pages_newest_first(pipeline, receiver):
    receiver.answers = [500]
    pipeline.segment()
    hook = pipeline.webhook(receiver.url)
    pipeline.user("u1", "pro")
    pipeline.upkeep()
    pipeline.send()
    for step in range(1, 4):
        clock.set_offset_seconds(step * 3 * 3600)
        pipeline.retry_due()
        pipeline.send()
    pages: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        page = call(
            "GET", f"/v1/webhooks/{hook['id']}/deliveries", key=pipeline.keys["admin"], query=query
        ).body
        pages += page["data"]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert len(pages) == 4 and [a["at"] for a in pages] == sorted((a["at"] for a in pages), reverse=True)


Call = Callable[..., Reply]
