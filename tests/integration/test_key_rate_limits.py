"""Per-key rate limits through the local API Gateway, in process, with the real functions.

The stack is built from the real template with small limits given as its parameters (as
`sam deploy --parameter-overrides` would), so what is tested is the template's usage plans, the
keys' usage keys that storage.usage_keys makes, the authorizer naming them, and the gateway's
token buckets. The stack's clock is frozen for each test and moved by hand: no test sleeps, and
no test depends on how fast the machine is.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from segmentation import clock
from segmentation.auth.keys import hash_key, identity_hash
from segmentation.storage import api_keys as key_store
from segmentation.storage import aws

from infra.local.apigw import HttpRequest, HttpResponse
from infra.local.rate_limits import KeyRateLimits, TokenBucket, enforced_from_environment
from infra.local.stack import PROJECT_ROOT, Keys, LocalStack

ADMIN_KEY = "sk_admin_rate_limits_test"
INGEST_KEY = "sk_ingest_rate_limits_test"
IDENTITY_SECRET = "rate-limits-identity-secret"
LIMITS = {
    "ReadRateLimit": "2",
    "ReadBurstLimit": "3",
    "WriteRateLimit": "2",
    "WriteBurstLimit": "3",
    "IngestRateLimit": "5",
    "IngestBurstLimit": "6",
    "IdentityRateLimit": "1",
    "IdentityBurstLimit": "2",
    # The Segment routes: no usage key meters them, each has a throttle of its own.
    "SourcesRateLimit": "2",
    "SourcesBurstLimit": "3",
    # Admin makes the other keys in every test: out of the way.
    "AdminRateLimit": "1000",
    "AdminBurstLimit": "1000",
}


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    saved = dict(os.environ)
    os.environ["SEED_DEMO"] = "0"
    local = LocalStack(
        PROJECT_ROOT / "template.yaml",
        keys=Keys(admin_key=ADMIN_KEY, ingest_key=INGEST_KEY, identity_secret=IDENTITY_SECRET),
        parameters={"SenderEmail": "sender@example.com", **LIMITS},
    )
    local.start()
    try:
        yield local
    finally:
        local.stop()
        os.environ.clear()
        os.environ.update(saved)
        aws.reset()


_next_start = [1_900_000_000.0]


@pytest.fixture
def frozen(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The stack's clock stands still (real time no longer moves it); `frozen.advance(s)` moves it.
    Each test starts an hour after the last one's start, so the buckets the module's keys share
    (INGEST_KEY's) are full again."""
    _next_start[0] += 3600
    now = [_next_start[0]]
    monkeypatch.setattr(clock, "time", SimpleNamespace(time=lambda: now[0]))

    def advance(seconds: float) -> None:
        now[0] += seconds

    yield SimpleNamespace(advance=advance)
    clock.set_offset_seconds(0)


def send(
    stack: LocalStack,
    method: str,
    path: str,
    *,
    key: str | None = None,
    user_hash: str | None = None,
    body: bytes = b"",
) -> HttpResponse:
    headers = [("Content-Type", "application/json")]
    if key:
        headers.append(("Authorization", f"Bearer {key}"))
    if user_hash:
        headers.append(("X-User-Hash", user_hash))
    return stack.handle(HttpRequest(method=method, path=path, headers=headers, body=body))


def new_key(stack: LocalStack, role: str) -> dict[str, Any]:
    created = send(stack, "POST", "/v1/api_keys", key=ADMIN_KEY, body=f'{{"role": "{role}"}}'.encode())
    assert created.status == 201, created.body
    answer: dict[str, Any] = created.json()
    return answer


def statuses(stack: LocalStack, count: int, key: str, path: str = "/v1/segments") -> list[int]:
    return [send(stack, "GET", path, key=key).status for _ in range(count)]


def assert_rate_limited(response: HttpResponse) -> None:
    assert response.status == 429
    assert dict(response.headers)["Retry-After"] == "1"
    error = response.json()["error"]
    assert error["code"] == "rate_limited"
    assert "Retry-After" in error["message"]


def test_each_key_has_a_bucket_of_its_own(stack: LocalStack, frozen: Any) -> None:
    first, second = new_key(stack, "read"), new_key(stack, "read")
    assert statuses(stack, 4, first["key"]) == [200, 200, 200, 429]  # ReadBurstLimit 3
    # Same role, same plan: its own three.
    assert statuses(stack, 4, second["key"]) == [200, 200, 200, 429]


def test_a_burst_beyond_the_limit_is_429_rate_limited_with_retry_after(
    stack: LocalStack, frozen: Any
) -> None:
    key = new_key(stack, "write")["key"]
    assert statuses(stack, 3, key) == [200, 200, 200]
    assert_rate_limited(send(stack, "GET", "/v1/segments", key=key))
    # Retry-After's second refills WriteRateLimit (2) tokens: two pass, the third waits again.
    frozen.advance(1)
    assert statuses(stack, 3, key) == [200, 200, 429]


def test_a_refused_request_never_reaches_the_function(stack: LocalStack, frozen: Any) -> None:
    key = new_key(stack, "ingest")["key"]
    bodies = [f'{{"user_id": "rl-{n}"}}'.encode() for n in range(7)]
    answers = [send(stack, "POST", "/v1/users", key=key, body=body).status for body in bodies]
    assert answers == [201] * 6 + [429]  # IngestBurstLimit 6
    assert send(stack, "GET", "/v1/users/rl-5", key=INGEST_KEY).status == 200
    assert send(stack, "GET", "/v1/users/rl-6", key=INGEST_KEY).status == 404


def test_identity_verified_callers_share_one_bucket(stack: LocalStack, frozen: Any) -> None:
    for user_id in ("id-1", "id-2"):
        assert (
            send(
                stack, "POST", "/v1/users", key=INGEST_KEY, body=f'{{"user_id": "{user_id}"}}'.encode()
            ).status
            == 201
        )
    first = identity_hash(IDENTITY_SECRET, "id-1")
    second = identity_hash(IDENTITY_SECRET, "id-2")
    assert send(stack, "GET", "/v1/users/id-1/messages", user_hash=first).status == 200
    assert send(stack, "GET", "/v1/users/id-2/messages", user_hash=second).status == 200
    assert_rate_limited(send(stack, "GET", "/v1/users/id-1/messages", user_hash=first))
    # Keys are metered apart from them.
    assert send(stack, "POST", "/v1/users/id-1/logins", key=INGEST_KEY).status == 200
    frozen.advance(1)
    assert send(stack, "GET", "/v1/users/id-2/messages", user_hash=second).status == 200


def test_routes_without_an_authorizer_are_not_metered(stack: LocalStack, frozen: Any) -> None:
    assert {send(stack, "GET", "/v1/openapi.json").status for _ in range(5)} == {200}


def test_a_key_gets_a_usage_key_of_its_own_that_is_not_its_secret(stack: LocalStack) -> None:
    created = new_key(stack, "read")
    record = key_store.find_by_hash(hash_key(created["key"]))
    assert record is not None and record.usage_key and record.usage_key_id
    assert created["key"] not in record.usage_key
    usage_key = aws.client("apigateway").get_api_key(apiKey=record.usage_key_id, includeValue=True)
    assert usage_key["value"] == record.usage_key and usage_key["enabled"] is True
    plans = aws.client("apigateway").get_usage_plans(keyId=record.usage_key_id)["items"]
    assert [plan["name"] for plan in plans] == ["segmentation-local-read"]
    assert plans[0]["throttle"] == {"rateLimit": 2.0, "burstLimit": 3}


def test_revoking_a_key_deletes_its_usage_key_so_the_gateway_refuses_it(
    stack: LocalStack, frozen: Any
) -> None:
    created = new_key(stack, "read")
    record = key_store.find_by_hash(hash_key(created["key"]))
    assert record is not None and record.usage_key
    assert stack.gateway is not None
    assert stack.gateway.rate_limits.check(record.usage_key).outcome == "allowed"
    assert send(stack, "DELETE", f"/v1/api_keys/{created['id']}", key=ADMIN_KEY).status == 204
    ids = {key["id"] for key in aws.client("apigateway").get_api_keys()["items"]}
    assert record.usage_key_id not in ids
    # What API Gateway does with an authorizer answer it cached before the revocation.
    assert stack.gateway.rate_limits.check(record.usage_key).outcome == "invalid_key"
    assert send(stack, "GET", "/v1/segments", key=created["key"]).status == 401


def test_with_the_limits_off_keys_are_checked_and_never_throttled(stack: LocalStack, frozen: Any) -> None:
    assert stack.gateway is not None
    key = new_key(stack, "read")["key"]
    enforced = stack.gateway.rate_limits
    stack.gateway.rate_limits = KeyRateLimits(enforce=False)
    try:
        assert set(statuses(stack, 10, key)) == {200}
        assert stack.gateway.rate_limits.check("usage_not_a_key").outcome == "invalid_key"
    finally:
        stack.gateway.rate_limits = enforced


@pytest.mark.parametrize(
    ("environ", "enforced"),
    [
        ({}, True),
        ({"KEY_RATE_LIMITS": "on"}, True),
        ({"KEY_RATE_LIMITS": "off"}, False),
        ({"KEY_RATE_LIMITS": "OFF"}, False),
    ],
)
def test_key_rate_limits_reads_on_and_off(environ: dict[str, str], enforced: bool) -> None:
    assert enforced_from_environment(environ) is enforced


def test_a_key_rate_limits_value_that_is_neither_stops_the_stack_at_start() -> None:
    env = {**os.environ, "KEY_RATE_LIMITS": "maybe", "PORT": "0"}
    done = subprocess.run(
        [sys.executable, "-m", "infra.local"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "KEY_RATE_LIMITS must be 'on' or 'off'" in done.stderr


def test_a_bucket_refills_at_its_rate_up_to_its_burst() -> None:
    bucket = TokenBucket(rate=2.0, burst=3, tokens=3.0, updated_at=100.0)
    assert [bucket.take(100.0) for _ in range(4)] == [0.0, 0.0, 0.0, 0.5]
    assert bucket.take(100.25) == pytest.approx(0.25)  # half a token back
    assert bucket.take(100.5) == 0.0
    assert [bucket.take(1000.0) for _ in range(4)][-1] > 0  # never more than the burst
    assert bucket.take(10.0) > 0  # a clock moved back refills nothing


def test_each_segment_route_has_one_throttle_for_every_key_together(stack: LocalStack, frozen: Any) -> None:
    # No authorizer runs there (the key may be in the body): API Gateway meters the method, not the key.
    other_ingest = new_key(stack, "ingest")["key"]
    body = b'{"userId": "u-throttled", "event": "tapped"}'
    answers = [send(stack, "POST", "/v1/track", key=key, body=body) for key in (INGEST_KEY, other_ingest) * 2]
    assert [a.status for a in answers] == [200, 200, 200, 429]  # SourcesBurstLimit 3, shared
    assert_rate_limited(answers[-1])
    # Another Segment route has a bucket of its own; the per-key routes are not touched.
    assert (
        send(stack, "POST", "/v1/identify", key=INGEST_KEY, body=b'{"userId": "u-throttled"}').status == 200
    )
    assert send(stack, "GET", "/v1/users/u-throttled", key=other_ingest).status == 200
    frozen.advance(1)  # SourcesRateLimit 2 a second
    assert [send(stack, "POST", "/v1/track", key=INGEST_KEY, body=body).status for _ in range(3)] == [
        200,
        200,
        429,
    ]
