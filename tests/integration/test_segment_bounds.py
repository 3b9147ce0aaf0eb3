"""Bounds on what a workspace may save (API.md): at most 1,000 segments per target, beyond which
a create is a 422 `limit_reached`; and a saved filter (segment or message audience) of more than
100 conditions or nested deeper than 6 is a 422 naming the node."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from segmentation import clock, definitions
from segmentation.auth import access
from segmentation.messaging import audience, auto
from segmentation.messaging.model import Audience
from segmentation.people.evaluable import Evaluator
from segmentation.segments import service
from segmentation.settings import get_settings
from segmentation.storage import attributes, deliveries
from segmentation.storage import segments as segment_store

from tests.support.apigw import Reply, call

KEYS = {role: f"sk_{role}_bounds_test_key_00000000000000000" for role in ("ingest", "write", "admin")}
TRIAL = {"field": "custom_attributes.plan", "op": "eq", "value": "trial"}
EMAIL = {"field": "email", "op": "exists"}


@pytest.fixture
def api(aws: object) -> None:
    for role, key in KEYS.items():
        access.install_key(key, role, role)
    attributes.register("users", {"plan": "string"})
    auto.reset_cache()


def create(name: str, filter_: Any = TRIAL, target: str = "users") -> Reply:
    return call(
        "POST", "/v1/segments", key=KEYS["write"], body={"name": name, "target": target, "filter": filter_}
    )


def nested(levels: int) -> dict[str, Any]:
    node: dict[str, Any] = EMAIL
    for _ in range(levels):
        node = {"or": [node]}
    return node


def conditions(n: int) -> dict[str, Any]:
    return {"and": [EMAIL] * n}


def store_segments(n: int, target: str = "users") -> None:
    """n stored segments written straight to the table (as storage.segments.create writes them),
    and the definitions' version moved on, as a create would."""
    table = boto3.resource("dynamodb").Table(get_settings().segments_table)
    filter_ = {"field": "name", "op": "exists"}
    with table.batch_writer() as batch:
        for i in range(n):
            name = f"{target} bulk {i}"
            batch.put_item(
                Item={
                    "segment_id": f"seg_{target}_bulk_{i}",
                    "name": name,
                    "name_key": name,
                    "target": target,
                    "filter_json": json.dumps(filter_),
                    "predefined": False,
                    "created_at": 1_700_000_000 + i,
                    "updated_at": 1_700_000_000 + i,
                }
            )
            batch.put_item(Item={"segment_id": f"#name#{target}#{name}", "owner": f"seg_{target}_bulk_{i}"})
    table.update_item(
        Key={"segment_id": "#meta"},
        UpdateExpression="ADD version :one",
        ExpressionAttributeValues={":one": 1},
    )
    definitions.reset_cache()


# --- at most 1,000 segments per target -------------------------------------------------------------


def test_the_1001st_segment_of_a_target_is_422_limit_reached_and_the_other_target_has_room(api: None) -> None:
    store_segments(999)
    assert create("The thousandth").status == 201
    refused = create("One too many")
    assert refused.status == 422 and refused.error_code == "limit_reached", refused.body
    assert refused.body["error"]["details"][0]["path"] == "target"
    assert "1000" in refused.body["error"]["message"].replace(",", "")
    assert "One too many" not in {s.name for s in definitions.records("users", check_now=True)}
    assert create("A company segment", {"field": "name", "op": "exists"}, "companies").status == 201
    # Deleting one makes room again.
    assert call("DELETE", "/v1/segments/seg_users_bulk_0", key=KEYS["admin"]).status == 204
    assert create("One too many").status == 201


def test_two_creates_racing_for_the_last_place_cannot_both_win(
    api: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service, "MAX_SEGMENTS_PER_TARGET", 2)
    assert create("First").status == 201
    real_create = segment_store.create
    raced: list[str] = []

    def another_create_lands_first(**arguments: Any) -> segment_store.SegmentRecord:
        if not raced:  # between this create's checks and its write, another instance takes the place
            raced.append(
                real_create(
                    segment_id="seg_racer",
                    name="Racer",
                    target="users",
                    filter_=TRIAL,
                    now=clock.now(),
                    expected_version=definitions.version(check_now=True),
                ).id
            )
        return real_create(**arguments)

    monkeypatch.setattr(segment_store, "create", another_create_lands_first)
    refused = create("Second")
    assert raced == ["seg_racer"]
    assert refused.status == 422 and refused.error_code == "limit_reached", refused.body
    stored = [s.name for s in definitions.records("users", check_now=True) if not s.predefined]
    assert sorted(stored) == ["First", "Racer"]


# --- saved filters: at most 100 conditions, 6 levels --------------------------------------------


@pytest.mark.parametrize(
    ("filter_", "path", "says"),
    [
        (conditions(101), "filter", "at most 100 conditions"),
        (nested(7), "filter.or[0].or[0].or[0].or[0].or[0].or[0]", "at most 6 levels"),
    ],
)
def test_a_segment_filter_over_the_bounds_is_422_on_create_and_edit(
    api: None, filter_: dict[str, Any], path: str, says: str
) -> None:
    assert create("At the bounds", {"and": [nested(5), *[EMAIL] * 99]}).status == 201
    refused = create("Over", filter_)
    assert refused.status == 422 and refused.error_code == "invalid_filter", refused.body
    assert {"path": path} == {"path": refused.body["error"]["details"][0]["path"]}
    assert says in refused.body["error"]["details"][0]["message"]
    segment_id = create("Fine").body["id"]
    edited = call("PUT", f"/v1/segments/{segment_id}", key=KEYS["admin"], body={"filter": filter_})
    assert edited.status == 422 and edited.body["error"]["details"][0]["path"] == path
    assert definitions.get(segment_id, check_now=True).filter == TRIAL  # type: ignore[union-attr]


def message(audience_: dict[str, Any]) -> Reply:
    body = {"name": "Hello", "type": "auto", "channel": "in_app", "audience": audience_, "body": "Hi"}
    return call("POST", "/v1/messages", key=KEYS["write"], body=body)


@pytest.mark.parametrize(
    ("filter_", "path"),
    [
        (conditions(101), "audience.filter"),
        (nested(7), "audience.filter.or[0].or[0].or[0].or[0].or[0].or[0]"),
    ],
)
def test_a_message_audience_filter_over_the_bounds_is_422(
    api: None, filter_: dict[str, Any], path: str
) -> None:
    refused = message({"segment_id": "active", "filter": filter_})
    assert refused.status == 422, refused.body
    assert refused.body["error"]["details"][0]["path"] == path


def test_an_audience_at_the_bounds_with_a_segment_is_accepted_and_evaluated(api: None) -> None:
    """The segment and the filter are evaluated side by side, not as one filter one level deeper
    (which would break the bounds the filter alone was checked against)."""
    for filter_ in (nested(6), conditions(100)):
        reply = message({"segment_id": "active", "filter": filter_})
        assert reply.status == 201, reply.body
        matches = audience.predicate(
            definitions.load_workspace(), Audience(segment_id="active", filter=filter_)
        )
        now = clock.now()
        assert matches({"user_id": "u1", "email": "a@example.com", "last_seen_at": now - 60}, now)
        assert not matches({"user_id": "u2", "email": "a@example.com"}, now)  # never seen: not active
        assert not matches({"user_id": "u3", "last_seen_at": now - 60}, now)  # no email


def test_upkeep_queues_a_live_auto_message_whose_audience_is_at_the_bounds(
    api: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    reply = message({"segment_id": "active", "filter": nested(6)})
    assert reply.status == 201, reply.body
    boto3.client("sesv2").create_email_identity(EmailIdentity="no-reply@example.com")
    assert call("POST", f"/v1/messages/{reply.body['id']}/live", key=KEYS["write"]).status == 200
    claimed: list[tuple[str, str]] = []

    def claim(message_id: str, user_id: str, **_: Any) -> deliveries.Claim:
        claimed.append((message_id, user_id))
        return deliveries.Claim.ALREADY_DONE

    monkeypatch.setattr(deliveries, "claim", claim)
    now = clock.now()
    record = {"user_id": "u1", "email": "a@example.com", "last_seen_at": now - 60}
    auto.queue_auto_messages(Evaluator(definitions.load_workspace()), record, now, frozenset())
    assert claimed == [(reply.body["id"], "u1")]
