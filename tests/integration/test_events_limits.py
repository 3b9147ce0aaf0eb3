"""Events within bounds, under moto: who may add an event name, the size bound on a user's event
data, and the bounded retries of an event's write (429 with Retry-After)."""

from __future__ import annotations

import hashlib
import hmac
import random
from decimal import Decimal
from typing import Any

import pytest
from botocore.exceptions import ClientError
from segmentation import clock
from segmentation.engine.events import stat
from segmentation.event_summaries import budget
from segmentation.event_summaries.stored import MAX_WINDOW_DAYS, SECONDS_PER_DAY, day_of
from segmentation.people import events
from segmentation.settings import get_settings
from segmentation.storage import dynamo
from segmentation.storage import events as event_store
from segmentation.storage import users as user_store

from tests.conftest import TEST_IDENTITY_SECRET
from tests.support.apigw import Reply, call

DAY = SECONDS_PER_DAY


@pytest.fixture
def user(keys: dict[str, str]) -> str:
    assert call("POST", "/v1/users", key=keys["ingest"], body={"user_id": "u-1"}).status == 201
    return "u-1"


def as_user(body: dict[str, Any], user_id: str = "u-1") -> Reply:
    """POST an event with the user's own X-User-Hash, as a browser or mobile app does."""
    own = hmac.new(TEST_IDENTITY_SECRET.encode(), user_id.encode(), hashlib.sha256).hexdigest()
    return call("POST", f"/v1/users/{user_id}/events", user_hash=own, body=body)


def with_key(keys: dict[str, str], body: dict[str, Any], user_id: str = "u-1") -> Reply:
    return call("POST", f"/v1/users/{user_id}/events", key=keys["ingest"], body=body)


def listed(keys: dict[str, str], user_id: str = "u-1") -> dict[str, dict[str, Any]]:
    reply = call("GET", f"/v1/users/{user_id}/events", key=keys["read"])
    assert reply.status == 200, reply.body
    return {entry["event_name"]: entry for entry in reply.body["data"]}


# --- who may add an event name --------------------------------------------------------------------


def test_an_end_user_cannot_add_an_event_name_and_changes_nothing_trying(
    keys: dict[str, str], user: str
) -> None:
    before = user_store.get("u-1")
    reply = as_user({"event_name": "Made_Up_Name", "id": "evt-1"})
    assert reply.status == 403 and reply.error_code == "forbidden"
    assert "made_up_name" in reply.body["error"]["message"] and "key" in reply.body["error"]["message"]
    assert [d["path"] for d in reply.body["error"]["details"]] == ["event_name"]
    assert events.known_names() == {}  # the name was not registered
    assert user_store.get("u-1") == before  # nor anything recorded for the user
    # Its id was not remembered either: once a key has made the name known, the same event counts.
    assert with_key(keys, {"event_name": "made_up_name", "id": "evt-0"}).status == 202
    assert as_user({"event_name": "Made_Up_Name", "id": "evt-1"}).status == 202
    assert listed(keys)["made_up_name"]["count"] == 2


def test_an_end_user_records_names_the_app_has_recorded_whatever_the_case(
    keys: dict[str, str], user: str
) -> None:
    assert with_key(keys, {"event_name": "uploaded_photo"}, user_id="u-1").status == 202
    assert call("POST", "/v1/users", key=keys["ingest"], body={"user_id": "u-2"}).status == 201
    assert as_user({"event_name": "Uploaded_Photo"}, user_id="u-2").status == 202
    assert as_user({"event_name": "uploaded_photo"}, user_id="u-2").status == 202
    assert listed(keys, "u-2")["uploaded_photo"]["count"] == 2
    assert as_user({"event_name": "uploaded_video"}, user_id="u-2").status == 403
    assert set(events.known_names()) == {"uploaded_photo"}


def test_a_full_workspace_still_takes_known_names_from_end_users(
    keys: dict[str, str], user: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(events, "MAX_EVENT_NAMES", 2)
    for name in ("a", "b"):
        assert with_key(keys, {"event_name": name}).status == 202
    assert with_key(keys, {"event_name": "c"}).status == 422  # a key past the cap
    assert as_user({"event_name": "c"}).status == 403  # an end user: never a new name
    assert as_user({"event_name": "B"}).status == 202


# --- the size bound -------------------------------------------------------------------------------


def test_backdated_events_past_the_bound_keep_the_user_within_the_bound_and_every_count_exact(
    keys: dict[str, str], user: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A budget smaller than the deployed one (the same code paths, with a fraction of the writes:
    moto copies the item and its stream images on every write): 300 events of 2 names, in
    random order over 95 days (some before every window, a few sent twice with their id), fill it
    over and over (the day counts alone take about 1.5 KB of it)."""
    monkeypatch.setattr(budget, "BUDGET_BYTES", 3 * 1024)
    monkeypatch.setattr(budget, "SLACK_BYTES", 512)
    rng = random.Random(17)
    now = clock.now()
    names = [f"feature_{i}.used" for i in range(2)]
    sent: dict[str, list[float]] = {name: [] for name in names}
    for name in names:  # a key makes the names known
        assert with_key(keys, {"event_name": name, "created_at": now - 100 * DAY}).status == 202
        sent[name].append(now - 100 * DAY)
    for i in range(300):
        name = rng.choice(names)
        at = round(now - rng.uniform(0, 95) * DAY, 3)
        # A few with an id, sent twice (a retry counts once); only early on, as moto copies every
        # table and its stream in each transaction.
        event_id = f"e{i}" if i < 100 and i % 10 == 0 else None
        events.record("u-1", name, Decimal(str(at)), event_id, now, may_add_name=False)
        sent[name].append(at)
        if event_id:
            events.record("u-1", name, Decimal(str(at)), event_id, now, may_add_name=False)
        if i % 50 == 0:
            assert_within_bound()
    item = assert_within_bound()
    assert budget.events_size(item["events"]) > budget.BUDGET_BYTES - 2 * budget.SLACK_BYTES
    assert sum(len(times) for summary in item["events"].values() for times in summary["t"].values()) < 300

    # Counts, first and last times: exact.
    summaries = listed(keys)
    for name in names:
        assert summaries[name]["count"] == len(sent[name])
    assert {n: s["first_at"] for n, s in summaries.items()} == {
        n: _iso(min(times)) for n, times in sent.items()
    }
    assert {n: s["last_at"] for n, s in summaries.items()} == {
        n: _iso(max(times)) for n, times in sent.items()
    }
    # Windows: exact where the day a window cuts kept its times (the newest days keep theirs);
    # where it did not, that day's events count from its start (never more than the exact count).
    exact_windows = 0
    for name in names:
        summary = item["events"][name]
        assert all(len(times) == summary["d"][day] for day, times in summary["t"].items())  # all or none
        timed_days = {int(day) for day in summary["t"]}
        for days in range(1, MAX_WINDOW_DAYS + 1):
            low = now - days * DAY
            exact = sum(1 for at in sent[name] if low < at <= now)
            got = stat(item, name, "count", now, days)
            if day_of(low) in timed_days:
                assert got == exact, (name, days)
                exact_windows += 1
            else:
                assert got <= exact, (name, days)
        assert all(stat(item, name, "count", now, d) == _recount(sent[name], now, d) for d in range(1, 8))
    assert exact_windows > len(names) * 10  # the recent days kept their times
    # The user's other writes still work.
    assert call("POST", "/v1/users", key=keys["ingest"], body={"user_id": "u-1", "name": "Ada"}).status == 200


def _recount(times: list[float], now: float, days: int) -> int:
    return sum(1 for at in times if now - days * DAY < at <= now)


def _iso(epoch: float) -> str:
    return events.format_timestamp(Decimal(str(epoch)))


def assert_within_bound() -> dict[str, Any]:
    """The user's event data within the budget, and the room recorded never more than what is left."""
    item = user_store.get("u-1")
    assert item is not None
    size = budget.events_size(item["events"])
    assert size + item["events_room"] <= budget.BUDGET_BYTES and item["events_room"] >= 0
    return item


def test_the_deployed_budget_leaves_most_of_an_item_to_the_rest_of_the_user() -> None:
    assert budget.BUDGET_BYTES <= 400 * 1024 / 3


# --- bounded retries: 429 with Retry-After -------------------------------------------------------


class RivalWrites:
    """The DynamoDB client, with another writer of the same user winning every race: before each
    write of the user item, the rival's write lands (as a concurrent event's would: the name's
    version and the user's rev move on)."""

    def __init__(self, name: str) -> None:
        self.real = dynamo.client()
        self.name = name
        self.writes = 0

    def rival(self) -> None:
        self.real.update_item(
            TableName=get_settings().users_table,
            Key={"user_id": "u-1"},
            UpdateExpression="SET #ev.#nm.#v = #ev.#nm.#v + :one ADD #rev :one",
            ExpressionAttributeNames={"#ev": "events", "#nm": self.name, "#v": "v", "#rev": "rev"},
            ExpressionAttributeValues={":one": 1},
        )

    def update_item(self, **arguments: Any) -> Any:
        if arguments["TableName"] == get_settings().users_table:
            self.writes += 1
            self.rival()
        return self.real.update_item(**arguments)

    def transact_write_items(self, **arguments: Any) -> Any:
        self.writes += 1
        self.rival()
        return self.real.transact_write_items(**arguments)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


@pytest.mark.parametrize("event_id", [None, "evt-7"])
def test_an_event_that_keeps_losing_races_is_a_429_with_retry_after_after_five_writes(
    keys: dict[str, str], user: str, monkeypatch: pytest.MonkeyPatch, event_id: str | None
) -> None:
    now = clock.now()
    assert with_key(keys, {"event_name": "uploaded_photo", "created_at": now}).status == 202
    before = user_store.get("u-1")
    rivals = RivalWrites("uploaded_photo")
    monkeypatch.setattr(dynamo, "client", lambda: rivals)
    body: dict[str, Any] = {"event_name": "uploaded_photo", "created_at": now - 3 * DAY}  # not in place
    if event_id:
        body["id"] = event_id
    reply = with_key(keys, body)
    assert reply.status == 429 and reply.error_code == "throttled"
    assert reply.headers["retry-after"] == "1"
    assert rivals.writes == event_store.ATTEMPTS == 5
    monkeypatch.undo()
    after = user_store.get("u-1")
    assert before is not None and after is not None
    assert after["events"]["uploaded_photo"]["n"] == before["events"]["uploaded_photo"]["n"]  # not counted
    assert after["events"]["uploaded_photo"]["d"] == before["events"]["uploaded_photo"]["d"]
    # Nothing of it was kept, its id included: sent again once the race is over, it counts once.
    assert with_key(keys, body).status == 202
    assert with_key(keys, body).status == 202
    assert listed(keys)["uploaded_photo"]["count"] == (3 if event_id is None else 2)


class ConflictingTransactions:
    """The DynamoDB client, with every transaction cancelled by a conflicting one on the user item
    (DynamoDB's TransactionConflict), as under heavy contention."""

    def __init__(self) -> None:
        self.real = dynamo.client()
        self.transactions = 0

    def transact_write_items(self, **arguments: Any) -> Any:
        self.transactions += 1
        raise ClientError(
            {
                "Error": {"Code": "TransactionCanceledException", "Message": "Transaction cancelled"},
                "CancellationReasons": [{"Code": "None"}, {"Code": "TransactionConflict"}],
            },
            "TransactWriteItems",
        )

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


def test_transient_transaction_conflicts_count_among_the_five_writes(
    keys: dict[str, str], user: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert with_key(keys, {"event_name": "uploaded_photo"}).status == 202
    conflicts = ConflictingTransactions()
    monkeypatch.setattr(dynamo, "client", lambda: conflicts)
    reply = with_key(keys, {"event_name": "uploaded_photo", "id": "evt-1"})
    assert reply.status == 429 and reply.headers["retry-after"] == "1"
    assert conflicts.transactions == 5  # not 5 times the helper's own retries
    monkeypatch.undo()
    assert listed(keys)["uploaded_photo"]["count"] == 1


def test_every_429_the_service_answers_says_when_to_retry(
    keys: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """DynamoDB throttling that outlasts the SDK's retries, on another route: the same header."""
    real = dynamo.client()

    class ThrottledUsers:
        def get_item(self, **arguments: Any) -> Any:
            if arguments["TableName"] == get_settings().users_table:
                raise ClientError(
                    {"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, "GetItem"
                )
            return real.get_item(**arguments)

        def __getattr__(self, name: str) -> Any:
            return getattr(real, name)

    monkeypatch.setattr(dynamo, "client", ThrottledUsers)
    reply = call("GET", "/v1/users/u-9", key=keys["read"])
    assert reply.status == 429 and reply.error_code == "throttled" and reply.headers["retry-after"] == "1"
