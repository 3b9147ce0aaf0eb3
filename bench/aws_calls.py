"""AWS calls per operation, counted in the real code paths under moto, in steady state.

The local stack (infra.local: moto in process, template.yaml's tables, queues and functions, its
API Gateway with the authorizer, its stream and queue pollers) runs the real handlers. Every step
is done once to warm caches, then again with the counter open. The login goes through API
Gateway (the authorizer is counted apart: API Gateway caches its answer per key); a stream change
is the real stream record read from moto's DynamoDB Streams; the rebuild and the delivery are the
real SQS messages the coordinator and the stream consumer queued.
"""

from __future__ import annotations

import json
import math
import os
import secrets
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from segmentation import clock

from bench import moto_speed
from bench.calls import CallLog, Window
from infra.local.seed import SEGMENTS as SEED_SEGMENTS

DAY = 86400.0
INGEST = "IngestFunction"
STREAM = "MembershipStreamFunction"
WORKER = "RebuildWorkerFunction"
COORDINATOR = "RebuildCoordinatorFunction"
SENDER = "SenderFunction"
AUTHORIZER = "AuthorizerFunction"
RECHECK = "RecheckFunction"
FEEDBACK = "EmailFeedbackFunction"
SOURCES = "SourcesFunction"
PUBLISHER = "ChangesPublisherFunction"
WEBHOOK_SENDER = "WebhookSenderFunction"
WEBHOOK_CHANGES = 100  # one webhook POST's worth
REBUILD_WORKERS = 1
USERS = 15  # made through the API: three rounds of five, one user per operation

# The demo seed's segments less those reading company.*: a company filter adds a read of the
# user's companies to every step, and the goals are counted for a workspace without one.
SEGMENTS = tuple(s for s in SEED_SEGMENTS if "company." not in json.dumps(s["filter"]))


@dataclass
class CallCounts:
    counts: dict[str, float | None] = field(default_factory=dict)
    breakdown: dict[str, dict[str, int]] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    clients: dict[str, list[str]] = field(default_factory=dict)  # function -> clients its path made
    missing: dict[str, str] = field(default_factory=dict)

    def record(self, name: str, window: Window, function: str) -> None:
        self.counts[name] = window.count(function)
        self.breakdown[name] = window.operations(function)


class _Bench:
    """The local stack with counting handlers, and the few API calls the scenarios need."""

    def __init__(self) -> None:
        from infra.local.stack import Keys, LocalStack

        self.keys = Keys(
            admin_key="sk_admin_" + secrets.token_urlsafe(16),
            ingest_key="sk_ingest_" + secrets.token_urlsafe(16),
            identity_secret=secrets.token_urlsafe(16),
        )
        # A sender address, as `make run` sets one: without it SES refuses every email ("Missing
        # domain"), and the process's environment would keep the empty one for later sections.
        self.stack = LocalStack(keys=self.keys, parameters={"SenderEmail": "bench@example.com"})
        self.log = CallLog()

    def start(self) -> None:
        from segmentation.storage import aws

        os.environ.setdefault("LOG_LEVEL", "ERROR")
        # One scan slice per table, so that a few hundred users already span several scan pages and
        # the rebuild's cost per user shows apart from its cost per job (reported as such).
        os.environ["REBUILD_WORKERS"] = str(REBUILD_WORKERS)
        os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "ERROR")
        self.stack.start()
        moto_speed.install()
        self.log.install()
        for logical_id, function in self.stack.functions.items():
            function.handler = self.log.wrap(logical_id, function.handler, aws.reset)

    def stop(self) -> None:
        self.stack.stop()

    def request(self, method: str, path: str, body: Any = None, *, admin: bool = False) -> Any:
        from infra.local.apigw import HttpRequest

        key = self.keys.admin_key if admin else self.keys.ingest_key
        headers = [("Authorization", f"Bearer {key}"), ("Content-Type", "application/json")]
        raw = b"" if body is None else json.dumps(body).encode()
        response = self.stack.handle(HttpRequest(method=method, path=path, headers=headers, body=raw))
        if response.status >= 400:
            raise RuntimeError(f"{method} {path} -> {response.status}: {response.body[:300]!r}")
        return response.json()

    def upsert(self, user_id: str, **fields: Any) -> None:
        self.request("POST", "/v1/users", {"user_id": user_id, **fields})

    def settle(self) -> int:
        """Run every stream and queue until nothing is left (what Lambda's mappings would do)."""
        return self.stack.drain()


def _user_fields(index: int, now: float, **custom: Any) -> dict[str, Any]:
    attrs = {"plan": "free trial", "photos_uploaded": 10, "downloaded_mobile_app": True, "browser": "chrome"}
    attrs.update(custom)
    return {
        "email": f"user{index}@example.com",
        "name": f"User {index}",
        "signed_up_at": int(now - (index % 500 + 2) * DAY),
        "last_seen_at": int(now - (index % 20) * DAY),
        "custom_attributes": attrs,
    }


def _live_auto_message(bench: _Bench, segment_id: str) -> None:
    """An auto email to the segment, live. Made through the API, or the messaging service it calls."""
    body = {
        "name": "Hot prospect nudge",
        "type": "auto",
        "channel": "email",
        "audience": {"segment_id": segment_id},
        "subject": "Hi {{ user.name }}",
        "body": "You have uploaded {{ user.custom_attributes.photos_uploaded }} photos.",
    }
    try:
        message_id = bench.request("POST", "/v1/messages", body, admin=True)["id"]
        bench.request("POST", f"/v1/messages/{message_id}/live", admin=True)
    except RuntimeError:  # the route failed: setup is not what is measured, so go one layer down
        from segmentation.messaging import service

        message_id = service.create(body, clock.now()).id
        service.put_live(message_id, clock.now())


def _bulk_users(start: int, count: int, now: float) -> None:
    """Users written straight to the table (as the API stores them), to size the rebuild quickly."""
    from segmentation.storage import users

    for index in range(start, start + count):
        fields = _user_fields(index, now, plan=("starter", "free trial", "pro")[index % 3])
        custom = fields.pop("custom_attributes")
        values = {k: Decimal(v) if isinstance(v, int) else v for k, v in fields.items()}
        users.upsert(f"bulk-{index:06d}", values, custom, [], now)


@contextmanager
def _bench_stack() -> Iterator[_Bench]:
    bench = _Bench()
    bench.start()
    try:
        yield bench
    finally:
        bench.stop()


def run(rebuild_users: tuple[int, int]) -> CallCounts:
    """Count every operation. `rebuild_users`: table sizes of the two rebuild runs (for the marginal)."""
    result = CallCounts()
    with _bench_stack() as bench:
        _scenarios(bench, result, rebuild_users)
        result.clients = {f: sorted(c) for f, c in bench.log.clients.items()}
    result.extra["moto_failed_transactions"] = moto_speed.failed_transactions
    return result


@contextmanager
def _cache_policy(revalidate_seconds: float) -> Iterator[None]:
    """Set how long every warm cache of the layer trusts itself before re-reading its version.

    inf: warm and trusted (a busy container, many requests a second); 0: due for its version check
    (an idle container). Both are deterministic, unlike counting against the wall clock.
    """
    modules = [
        m
        for name, m in list(sys.modules.items())
        if name.startswith("segmentation.") and hasattr(m, "REVALIDATE_SECONDS")
    ]
    saved = [getattr(m, "REVALIDATE_SECONDS") for m in modules]  # noqa: B009
    for module in modules:
        setattr(module, "REVALIDATE_SECONDS", revalidate_seconds)  # noqa: B010
    try:
        yield
    finally:
        for module, value in zip(modules, saved, strict=True):
            setattr(module, "REVALIDATE_SECONDS", value)  # noqa: B010


def _setup(bench: _Bench, now: float) -> None:
    for index in range(USERS):  # first: a custom attribute is known once a user has it
        bench.upsert(f"u-{index}", **_user_fields(index, now))
    bench.settle()
    segment_ids = {}
    for segment in SEGMENTS:
        body = {"target": "users", **segment}
        segment_ids[segment["name"]] = bench.request("POST", "/v1/segments", body, admin=True)["id"]
    _live_auto_message(bench, segment_ids["Hot prospects"])
    bench.settle()


def _operations(bench: _Bench, result: CallCounts, suffix: str, first_user: int) -> None:
    """One login, stream changes and a delivery, each counted; users first_user.. are still untouched."""
    log = bench.log
    user = iter(f"u-{i}" for i in range(first_user, first_user + 5))
    name = next(user)
    # A login: the IngestFunction's calls; the authorizer's (on an API Gateway cache miss) apart.
    with log.counting() as window:
        bench.request("POST", f"/v1/users/{name}/logins")
    result.record("login" + suffix, window, INGEST)
    result.record("login_authorizer_cache_miss" + suffix, window, AUTHORIZER)
    with log.counting() as window:
        bench.settle()  # the login's own stream record: last_seen_at moved, membership did not
    result.record("stream_after_login" + suffix, window, STREAM)

    with log.counting() as window:
        bench.upsert(next(user), custom_attributes={"browser": "safari"})  # no segment reads browser
        bench.settle()
    result.record("stream_no_change" + suffix, window, STREAM)
    with log.counting() as window:
        bench.upsert(
            next(user), custom_attributes={"downloaded_mobile_app": False}
        )  # joins "No action taken"
        bench.settle()
    result.record("stream_one_change" + suffix, window, STREAM)
    result.extra["stream_one_change_invocations" + suffix] = window.invocations[STREAM]
    emailed = next(user)
    with log.counting() as window:  # joins "Hot prospects", which a live auto email targets
        bench.upsert(emailed, custom_attributes={"plan": "starter", "photos_uploaded": 95})
        bench.settle()
    result.record("stream_one_change_with_auto_message" + suffix, window, STREAM)
    result.record("delivery" + suffix, window, SENDER)
    if window.invocations[SENDER] != 1:
        result.missing["delivery" + suffix] = (
            f"expected one sender invocation, saw {window.invocations[SENDER]}"
        )
    _ses_feedback(bench, result, suffix, f"user{emailed.removeprefix('u-')}@example.com")
    with log.counting() as window:
        bench.stack.run_frequent_schedules()
    result.record("recheck_run_nothing_due" + suffix, window, RECHECK)
    # Events: the user's first of the day (its summary is rewritten) and one more, with an id.
    with log.counting() as window:
        bench.request("POST", f"/v1/users/{name}/events", {"event_name": "uploaded_photo"})
    result.record("event" + suffix, window, INGEST)
    with log.counting() as window:
        body = {"event_name": "uploaded_photo", "id": secrets.token_hex(8)}
        bench.request("POST", f"/v1/users/{name}/events", body)
    result.record("event_again_same_day" + suffix, window, INGEST)
    bench.settle()


def _capped_delivery(bench: _Bench, result: CallCounts, user_id: str) -> None:
    """The same auto email with a frequency cap in force: the user's email ledger is read first
    (one GetItem; the slot is taken in the begin transaction). The settings are cached as a busy
    sender holds them. `user_id` is one the rounds left untouched."""
    from segmentation.messaging import workspace_settings

    bench.request("PUT", "/v1/settings", {"email_frequency_cap": {"max": 3, "days": 7}}, admin=True)
    workspace_settings.email_cap(clock.now())
    with bench.log.counting() as window:
        bench.upsert(user_id, custom_attributes={"plan": "starter", "photos_uploaded": 95})
        bench.settle()
    result.record("delivery_with_frequency_cap", window, SENDER)
    bench.request("PUT", "/v1/settings", {"email_frequency_cap": None}, admin=True)
    bench.settle()


def _ses_feedback(bench: _Bench, result: CallCounts, suffix: str, address: str) -> None:
    """SES reports a permanent bounce of the email just delivered: the local SES publishes it to
    the default bus, the template's rule routes it to EmailFeedbackFunction (counted: its calls)."""
    from infra.local.ses_events import SesEventRequest

    with bench.log.counting() as window:
        bench.stack.report_ses_event(SesEventRequest(type="Bounce", email=address, bounce_type="Permanent"))
        bench.settle()
    result.record("ses_feedback_event" + suffix, window, FEEDBACK)
    if window.invocations[FEEDBACK] != 1:
        result.missing["ses_feedback_event" + suffix] = (
            f"expected one feedback invocation, saw {window.invocations[FEEDBACK]}"
        )


def _segment_batch(prefix: str) -> list[dict[str, Any]]:
    """A Segment library's batch as an app sends it: 50 users, each identified, then 7 tracks, a
    page and, for every fifth, a group (5 companies); every message with its messageId."""
    messages: list[dict[str, Any]] = []
    for n in range(50):
        user_id = f"{prefix}-{n}"
        messages.append(
            {
                "type": "identify",
                "userId": user_id,
                "traits": {"email": f"{user_id}@example.com", "plan": "pro"},
            }
        )
        messages += [
            {"type": "track", "userId": user_id, "event": "Order Completed", "properties": {"revenue": t}}
            for t in range(7)
        ]
        messages.append({"type": "page", "userId": user_id, "name": "Pricing"})
        if n % 5 == 0:
            messages.append({"type": "group", "userId": user_id, "groupId": f"{prefix}-co-{n // 5}"})
    for number, message in enumerate(messages):
        message.update(messageId=f"{prefix}-m-{number}", timestamp="2026-11-28T10:00:00Z")
    return messages


def _segment_ingest(bench: _Bench, result: CallCounts, round_name: str) -> None:
    """POST /v1/batch through the local API Gateway (no authorizer: SourcesFunction checks the key),
    counted per 100 messages, the names known (a warm function)."""
    from infra.local.apigw import HttpRequest

    messages = _segment_batch(round_name)
    body = json.dumps({"batch": messages, "writeKey": bench.keys.ingest_key}).encode()
    with bench.log.counting() as window:
        response = bench.stack.handle(HttpRequest(method="POST", path="/v1/batch", body=body))
    answer = response.json()
    if response.status != 200 or answer["accepted"] != len(messages):
        result.missing["segment_batch_per_100_messages"] = f"{response.status}: {response.body[:300]!r}"
        return
    result.counts["segment_batch_per_100_messages"] = round(window.count(SOURCES) / len(messages) * 100, 2)
    result.breakdown["segment_batch_per_100_messages"] = window.operations(SOURCES)
    result.extra["segment_batch_messages"] = len(messages)
    bench.settle()


def _rebuild(bench: _Bench, result: CallCounts, sizes: tuple[int, int], now: float) -> None:
    """Two table sizes, each rebuilt once to settle and once counted; the difference is per user."""
    runs: list[tuple[int, Window]] = []
    have = USERS
    for size in sizes:
        _bulk_users(have, max(0, size - have), now)
        have = max(size, have)
        bench.settle()
        bench.stack.invoke(COORDINATOR)  # writes whatever differs; the next run finds nothing to do
        with bench.log.counting() as window:
            bench.stack.invoke(COORDINATOR)
        runs.append((have, window))
        result.extra[f"rebuild_{have}_users"] = {
            "worker_calls": window.count(WORKER),
            "worker_invocations": window.invocations[WORKER],
            "coordinator_calls": window.count(COORDINATOR),
            "worker_operations": window.operations(WORKER),
        }
    (small, first), (large, second) = runs
    marginal = (second.count(WORKER) - first.count(WORKER)) / (large - small) * 100
    result.counts["rebuild_per_100_users_no_change"] = round(marginal, 3)
    result.extra["rebuild_per_100_users_at_measured_size"] = round(second.count(WORKER) / large * 100, 3)
    fixed = second.count(WORKER) + second.count(COORDINATOR) - marginal * large / 100
    result.extra["rebuild_workers"] = REBUILD_WORKERS
    result.extra["rebuild_fixed_calls_per_run"] = round(fixed, 1)
    result.extra["rebuild_jobs_per_run"] = second.invocations[WORKER]


@contextmanager
def _receiver() -> Iterator[tuple[str, list[bytes]]]:
    """A webhook endpoint on this machine answering 200: its URL and the bodies it got."""
    bodies: list[bytes] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            bodies.append(self.rfile.read(int(self.headers.get("Content-Length", 0))))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", bodies
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def _changes_not_recorded() -> Iterator[None]:
    """The membership write as it was before changes were recorded: the change's Put left out of
    its transaction (only to measure what recording adds)."""
    from segmentation.storage import changes, membership_writes

    real = membership_writes._SegmentChange.group

    def without_record(self: Any, sequence: int, *, counted: bool = True) -> list[dict[str, Any]]:
        return [a for a in real(self, sequence, counted=counted) if not changes.is_put_of_change(a)]

    membership_writes._SegmentChange.group = without_record  # type: ignore[method-assign]
    try:
        yield
    finally:
        membership_writes._SegmentChange.group = real  # type: ignore[method-assign]


def _changes(bench: _Bench, result: CallCounts) -> None:
    """change_recorded: the calls a recorded change adds to the stream's write that makes it (the
    same one-change upsert, with and without the change's Put in the transaction); webhook_batch:
    the publisher's and the webhook sender's calls per 100 changes delivered (EventBridge apart)."""
    log = bench.log
    body = {
        "name": "Bench changes",
        "filter": {"field": "custom_attributes.plan", "op": "eq", "value": "bench"},
    }
    segment_id = bench.request("POST", "/v1/segments", body, admin=True)["id"]
    for name in ("chg-a", "chg-b"):
        bench.upsert(name, custom_attributes={"plan": "free trial"})
    bench.settle()
    with log.counting() as window:
        bench.upsert("chg-a", custom_attributes={"plan": "bench"})
        bench.settle()
    recorded = window.count(STREAM)
    with _changes_not_recorded(), log.counting() as window:
        bench.upsert("chg-b", custom_attributes={"plan": "bench"})
        bench.settle()
    result.counts["change_recorded"] = recorded - window.count(STREAM)
    result.breakdown["change_recorded"] = {
        "stream_calls_with": recorded,
        "stream_calls_without": window.count(STREAM),
    }

    with _receiver() as (url, bodies):
        bench.request("POST", "/v1/webhooks", {"url": url, "segment_ids": [segment_id]}, admin=True)
        for index in range(WEBHOOK_CHANGES):
            bench.upsert(f"hook-{index:03d}", custom_attributes={"plan": "free trial"})
        bench.settle()
        with log.counting() as window:
            for index in range(WEBHOOK_CHANGES):
                bench.upsert(f"hook-{index:03d}", custom_attributes={"plan": "bench"})
            bench.settle()
        delivered = sum(len(json.loads(b)["data"]["changes"]) for b in bodies)
    publisher = window.operations(PUBLISHER)
    put_events = publisher.pop("events.PutEvents", 0)
    webhook_calls = sum(publisher.values()) + window.count(WEBHOOK_SENDER)
    result.counts["webhook_batch"] = round(webhook_calls / delivered * 100, 2) if delivered else None
    result.breakdown["webhook_batch"] = dict(Counter(publisher) + Counter(window.operations(WEBHOOK_SENDER)))
    result.extra["webhook_batch_posts"] = len(bodies)
    result.extra["webhook_batch_changes_delivered"] = delivered
    result.extra["eventbridge_put_events_per_100_changes"] = (
        round(put_events / delivered * 100, 2) if delivered else None
    )
    if delivered != WEBHOOK_CHANGES:
        result.missing["webhook_batch"] = f"expected {WEBHOOK_CHANGES} changes delivered, got {delivered}"


def _scenarios(bench: _Bench, result: CallCounts, rebuild_users: tuple[int, int]) -> None:
    now = clock.now()
    _setup(bench, now)
    with bench.log.discovery():
        # Warm-up of every path; each invocation starts with no clients and notes those it makes.
        _operations(bench, CallCounts(), "", first_user=0)
        bench.stack.invoke(COORDINATOR)
        bench.request("GET", "/v1/segments", admin=True)  # ApiFunction: only its clients are wanted
    with _cache_policy(math.inf):
        _operations(bench, result, "", first_user=5)
    with _cache_policy(0.0):
        _operations(bench, result, "_with_version_check", first_user=10)
    with _cache_policy(math.inf):
        _capped_delivery(bench, result, user_id="u-14")  # the last round's fifth user: untouched
    with _cache_policy(math.inf):  # a worker does hundreds of users a second: its caches stay warm
        _rebuild(bench, result, rebuild_users, now)
    with _cache_policy(math.inf):  # after the rebuild, whose table sizes it would change
        _segment_ingest(bench, CallCounts(), "segment-warm")  # the names first seen
        _segment_ingest(bench, result, "segment")
        _changes(bench, result)
