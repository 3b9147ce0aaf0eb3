"""POST and GET /v1/users/{user_id}/events under moto: recording, idempotency, concurrency, limits
and the cost of one event in AWS calls."""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from collections import Counter
from decimal import Decimal
from typing import Any

import pytest
from segmentation import clock
from segmentation.engine.events import stat, summary_of
from segmentation.errors import Retryable
from segmentation.event_summaries.budget import BUDGET_BYTES, events_size
from segmentation.people import events
from segmentation.storage import dynamo
from segmentation.storage import users as user_store

from tests.conftest import TEST_IDENTITY_SECRET
from tests.support.apigw import Reply, call
from tests.support.moto_atomic import atomic_moto_writes


@pytest.fixture
def user(keys: dict[str, str]) -> str:
    assert call("POST", "/v1/users", key=keys["ingest"], body={"user_id": "u-1"}).status == 201
    return "u-1"


def post(keys: dict[str, str], body: dict[str, Any], user_id: str = "u-1", role: str = "ingest") -> Reply:
    return call("POST", f"/v1/users/{user_id}/events", key=keys[role], body=body)


def listed(keys: dict[str, str], user_id: str = "u-1") -> list[dict[str, Any]]:
    reply = call("GET", f"/v1/users/{user_id}/events", key=keys["read"])
    assert reply.status == 200, reply.body
    return list(reply.body["data"])


def test_an_event_is_accepted_and_summarized(keys: dict[str, str], user: str) -> None:
    first = post(keys, {"event_name": "Uploaded_Photo", "created_at": "2026-11-28T10:00:00Z"})
    assert first.status == 202 and first.body == {"accepted": True}
    assert post(keys, {"event_name": "uploaded_photo", "created_at": "2026-11-28T11:00:00Z"}).status == 202
    assert post(keys, {"event_name": "uploaded_photo", "created_at": "2026-11-27T09:00:00Z"}).status == 202
    assert listed(keys) == [
        {
            "event_name": "uploaded_photo",
            "count": 3,
            "first_at": "2026-11-27T09:00:00Z",
            "last_at": "2026-11-28T11:00:00Z",
        }
    ]


def test_an_event_id_counts_once_whatever_the_retries(keys: dict[str, str], user: str) -> None:
    body = {"event_name": "invited", "id": "evt-1"}
    for _ in range(3):
        assert post(keys, body).status == 202
    assert post(keys, {"event_name": "invited", "id": "evt-2"}).status == 202
    assert [e["count"] for e in listed(keys)] == [2]


def test_fifty_concurrent_events_for_one_user_each_count_once_or_are_refused_untouched(
    keys: dict[str, str], user: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each event is counted or refused (Retryable: a 429) having changed nothing; the refused
    ones sent again, as clients do after a 429, all count once in the end."""
    atomic_moto_writes(monkeypatch)
    now = clock.now()
    refusals: list[int] = []
    errors: list[BaseException] = []

    def one(i: int) -> None:
        name = ("uploaded_photo", "invited")[i % 2]
        at = Decimal(str(now - (i % 5) * 3600))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                events.record("u-1", name, at, f"e{i}" if i % 3 else None, now, may_add_name=True)
                return
            except Retryable:
                refusals.append(i)
            except BaseException as error:
                errors.append(error)
                return
        errors.append(TimeoutError(f"event {i} was refused for a minute"))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    item = user_store.get("u-1")
    assert item is not None
    for name in ("uploaded_photo", "invited"):
        summary = summary_of(item, name)
        assert summary is not None and summary.count == 25, name  # none lost, none twice
        assert sum(day.count for day in summary.days) == 25  # every one was kept in its day, too
        assert stat(item, name, "count", now, 2) == 25
    assert events_size(item["events"]) + item["events_room"] <= BUDGET_BYTES


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"event_name": "1st"}, "event_name"),
        ({"event_name": "has space"}, "event_name"),
        ({"event_name": "x" * 65}, "event_name"),
        ({"event_name": "ok", "metadata": {f"k{i}": i for i in range(11)}}, "metadata"),
        ({"event_name": "ok", "metadata": {"k": {"nested": 1}}}, "metadata.k"),
        ({"event_name": "ok", "id": ""}, "id"),
        ({"event_name": "ok", "extra": 1}, "extra"),
    ],
)
def test_bad_events_are_422_at_their_field_and_change_nothing(
    keys: dict[str, str], user: str, body: dict[str, Any], path: str
) -> None:
    reply = post(keys, body)
    assert reply.status == 422 and path in [d["path"] for d in reply.body["error"]["details"]]
    assert listed(keys) == []


def test_an_event_more_than_five_minutes_ahead_is_422(keys: dict[str, str], user: str) -> None:
    ahead = clock.now() + 301
    reply = post(keys, {"event_name": "ok", "created_at": ahead})
    assert reply.status == 422 and reply.body["error"]["details"][0]["path"] == "created_at"
    assert post(keys, {"event_name": "ok", "created_at": clock.now() + 290}).status == 202


def test_an_event_for_an_unknown_user_is_404(keys: dict[str, str]) -> None:
    assert post(keys, {"event_name": "ok"}, user_id="nobody").status == 404
    assert post(keys, {"event_name": "ok", "id": "x"}, user_id="nobody").status == 404
    assert call("GET", "/v1/users/nobody/events", key=keys["read"]).status == 404


def test_a_workspace_holds_a_bounded_number_of_event_names(
    keys: dict[str, str], user: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(events, "MAX_EVENT_NAMES", 3)
    for name in ("a", "b", "c"):
        assert post(keys, {"event_name": name}).status == 202
    reply = post(keys, {"event_name": "d"})
    assert reply.status == 422 and reply.body["error"]["details"][0]["path"] == "event_name"
    assert post(keys, {"event_name": "A"}).status == 202  # a known name, whatever its case


def test_roles_and_the_users_own_hash(keys: dict[str, str], user: str) -> None:
    assert post(keys, {"event_name": "ok"}, role="read").status == 403
    assert post(keys, {"event_name": "ok"}, role="admin").status == 202
    own = hmac.new(TEST_IDENTITY_SECRET.encode(), b"u-1", hashlib.sha256).hexdigest()
    assert call("POST", "/v1/users/u-1/events", user_hash=own, body={"event_name": "ok"}).status == 202
    assert call("POST", "/v1/users/u-2/events", user_hash=own, body={"event_name": "ok"}).status == 401
    assert call("GET", "/v1/users/u-1/events", user_hash=own).status == 401  # listing needs a key


def test_one_event_costs_at_most_two_aws_calls(
    keys: dict[str, str], user: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    post(keys, {"event_name": "uploaded_photo"})  # the name is known and cached from here on
    calls: Counter[str] = Counter()
    real = dynamo.client

    class Counting:
        def __getattr__(self, name: str) -> Any:
            calls[name] += 1
            return getattr(real(), name)

    monkeypatch.setattr(dynamo, "client", Counting)
    now = clock.now()
    cases = [
        ("the same name again today", {"event_name": "uploaded_photo", "created_at": now}),
        ("with an id", {"event_name": "uploaded_photo", "id": "evt-9", "created_at": now}),
        ("the first of another day", {"event_name": "uploaded_photo", "created_at": now - 2 * 86400}),
    ]
    for label, body in cases:
        calls.clear()
        events.record(
            "u-1",
            body["event_name"],
            Decimal(str(body["created_at"])),
            body.get("id"),
            now,
            may_add_name=True,
        )
        assert sum(calls.values()) <= 2, (label, calls)
