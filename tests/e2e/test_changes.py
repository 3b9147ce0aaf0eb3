"""Membership changes over HTTP against the local stack: a feed kept and resumed, a user's history,
a segment's days, and a webhook to a receiver on this machine, retried under the stack's clock."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook

from tests.e2e.harness import RunningStack
from tests.e2e.helpers import create_segment, ok, unique, upsert_user, wait_for

pytestmark = pytest.mark.e2e


def _feed(stack: RunningStack, segment_id: str, **query: str) -> dict[str, Any]:
    path = f"/v1/segments/{segment_id}/changes"
    if query:
        path += "?" + "&".join(f"{k}={v}" for k, v in query.items())
    page: dict[str, Any] = ok(stack.request("GET", path, key=stack.admin_key))
    return page


def test_a_kept_cursor_reads_only_what_came_since(stack: RunningStack) -> None:
    prefix = unique("u-feed") + "-"
    upsert_user(
        stack, {"user_id": prefix + "seed", "custom_attributes": {"plan": "free"}}
    )  # makes `plan` known
    segment_id = create_segment(
        stack,
        f"Feed {prefix}",
        {
            "and": [
                {"field": "user_id", "op": "starts_with", "value": prefix},
                {"field": "custom_attributes.plan", "op": "eq", "value": "pro"},
            ]
        },
    )
    empty = _feed(stack, segment_id)
    assert empty["data"] == [] and empty["next_cursor"]
    kept = empty["next_cursor"]
    for n in range(3):
        upsert_user(stack, {"user_id": f"{prefix}{n}", "custom_attributes": {"plan": "pro"}})
    first = wait_for(lambda: _feed(stack, segment_id, cursor=kept), lambda page: len(page["data"]) == 3)
    assert sorted(c["member_id"] for c in first["data"]) == [f"{prefix}{n}" for n in range(3)]
    assert {(c["change"], c["cause"], c["sequence"]) for c in first["data"]} == {("entered", "attributes", 1)}

    kept = first["next_cursor"]
    assert _feed(stack, segment_id, cursor=kept)["data"] == []
    upsert_user(stack, {"user_id": f"{prefix}1", "custom_attributes": {"plan": "free"}})
    later = wait_for(lambda: _feed(stack, segment_id, cursor=kept), lambda page: bool(page["data"]))
    assert [(c["member_id"], c["change"], c["sequence"]) for c in later["data"]] == [
        (f"{prefix}1", "exited", 2)
    ]

    history = ok(stack.request("GET", f"/v1/users/{prefix}1/segment_history", key=stack.admin_key))["data"]
    mine = [c for c in history if c["segment_id"] == segment_id]
    assert [(c["change"], c["sequence"]) for c in mine] == [("exited", 2), ("entered", 1)]
    days = ok(stack.request("GET", f"/v1/segments/{segment_id}/stats?days=2", key=stack.admin_key))["data"]
    assert len(days) == 2 and days[-1]["count"] == 2 and days[-1]["entered"] == 3 and days[-1]["exited"] == 1


class _Receiver:
    def __init__(self) -> None:
        self.answers = [500, 200]
        self.posts: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.posts.append(({k.lower(): v for k, v in self.headers.items()}, body))
                status = receiver.answers.pop(0) if len(receiver.answers) > 1 else receiver.answers[0]
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"


@pytest.fixture
def receiver() -> Iterator[_Receiver]:
    made = _Receiver()
    thread = threading.Thread(target=made.server.serve_forever, daemon=True)
    thread.start()
    yield made
    made.server.shutdown()
    made.server.server_close()


def test_a_webhook_to_a_local_receiver_is_signed_and_retried_until_it_answers(
    stack: RunningStack, receiver: _Receiver
) -> None:
    prefix = unique("u-hook") + "-"
    segment_id = create_segment(
        stack, f"Hooked {prefix}", {"field": "user_id", "op": "starts_with", "value": prefix}
    )
    hook = ok(
        stack.request(
            "POST", "/v1/webhooks", {"url": receiver.url, "segment_ids": [segment_id]}, key=stack.admin_key
        ),
        201,
    )
    try:
        upsert_user(stack, {"user_id": prefix + "a"})
        wait_for(lambda: len(receiver.posts), lambda n: n >= 1)
        assert len(receiver.posts) == 1  # answered 500: the retry waits 5 s of the stack's clock
        ok(stack.request("POST", "/_local/clock", {"offset_seconds": 60}))  # runs the retry schedule
        wait_for(lambda: len(receiver.posts), lambda n: n >= 2)
        (first_headers, first_body), (headers, body) = receiver.posts[:2]
        assert first_headers["webhook-id"] == headers["webhook-id"] and first_body == body
        document = Webhook(hook["secret"]).verify(body, headers)  # checks the real-time timestamp too
        assert [(c["segment_id"], c["member_id"], c["change"]) for c in document["data"]["changes"]] == [
            (segment_id, prefix + "a", "entered")
        ]
        attempts = wait_for(
            lambda: ok(stack.request("GET", f"/v1/webhooks/{hook['id']}/deliveries", key=stack.admin_key))[
                "data"
            ],
            lambda found: len(found) == 2,
        )
        assert [(a["status_code"], a["outcome"]) for a in attempts] == [(200, "delivered"), (500, "failed")]
        assert abs(int(headers["webhook-timestamp"]) - time.time()) < 60
    finally:
        ok(stack.request("POST", "/_local/clock", {"offset_seconds": 0}))
        stack.request("DELETE", f"/v1/webhooks/{hook['id']}", key=stack.admin_key)
