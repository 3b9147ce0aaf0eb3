"""Secrets Manager reads (storage/secrets.py) under moto with an injected failure: a failed read
is tried again within seconds, not after the 300 s TTL, and a failed refresh keeps the last
good value. The clock is held still and moved by hand, so no test depends on real time."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from segmentation import clock
from segmentation.settings import get_settings
from segmentation.storage import aws as storage_aws
from segmentation.storage import secrets

from tests.support.apigw import call

T0 = 1_800_000_000.0


class FlakySecretsManager:
    """Wraps the (moto) client's get_secret_value: it fails while `failing` is set."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.failing: Exception | None = None
        self.reads = 0

    def get_secret_value(self, **kwargs: Any) -> Any:
        self.reads += 1
        if self.failing is not None:
            raise self.failing
        return self.real(**kwargs)


THROTTLED = ClientError(
    {"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, "GetSecretValue"
)


@pytest.fixture
def flaky(aws: Any, monkeypatch: pytest.MonkeyPatch) -> FlakySecretsManager:
    client = storage_aws.client("secretsmanager")  # the one the code under test uses (cached)
    wrapped = FlakySecretsManager(client.get_secret_value)
    monkeypatch.setattr(client, "get_secret_value", wrapped.get_secret_value)
    return wrapped


@pytest.fixture
def now(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """clock.now() as a value the test moves: `now[0] += 2`."""
    moment = [T0]
    monkeypatch.setattr(clock, "now", lambda: moment[0])
    return moment


def _arn(aws: Any) -> str:
    return str(aws.secret_arns["IdentitySecret"])


def _rotate(arn: str, value: str) -> None:
    storage_aws.client("secretsmanager").put_secret_value(SecretId=arn, SecretString=value)


def test_a_failed_first_read_is_tried_again_within_seconds(
    aws: Any, flaky: FlakySecretsManager, now: list[float]
) -> None:
    arn = _arn(aws)
    _rotate(arn, "the-secret")
    flaky.failing = THROTTLED
    assert secrets.secret(arn) is None  # fails closed
    assert secrets.secret(arn) is None and flaky.reads == 1  # within the backoff: no new read
    flaky.failing = None
    now[0] += secrets.RETRY_FIRST_SECONDS
    assert secrets.secret(arn) == "the-secret"
    assert flaky.reads == 2
    now[0] += secrets.TTL_SECONDS - 1
    assert secrets.secret(arn) == "the-secret" and flaky.reads == 2  # then cached for the TTL


def test_failures_in_a_row_back_off_doubling_to_a_bound(
    aws: Any, flaky: FlakySecretsManager, now: list[float]
) -> None:
    arn = _arn(aws)
    flaky.failing = EndpointConnectionError(endpoint_url="https://secretsmanager.example")
    assert secrets.secret(arn) is None and flaky.reads == 1
    waits = []
    for _ in range(6):
        reads, waited = flaky.reads, 0.0
        while flaky.reads == reads:  # half a second at a time until the next read is made
            now[0] += 0.5
            waited += 0.5
            assert secrets.secret(arn) is None
        waits.append(waited)
    assert waits == [1.0, 2.0, 4.0, 8.0, 15.0, 15.0]
    assert secrets.RETRY_MAX_SECONDS == 15.0


def test_a_failed_refresh_keeps_the_last_good_value(
    aws: Any, flaky: FlakySecretsManager, now: list[float]
) -> None:
    arn = _arn(aws)
    _rotate(arn, "first")
    assert secrets.secret(arn) == "first"
    _rotate(arn, "second")
    now[0] += secrets.TTL_SECONDS
    flaky.failing = THROTTLED
    assert secrets.secret(arn) == "first"  # the refresh failed: still the last good value
    assert flaky.reads == 2
    flaky.failing = None
    assert secrets.secret(arn) == "first" and flaky.reads == 2  # waiting for the retry
    now[0] += secrets.RETRY_FIRST_SECONDS
    assert secrets.secret(arn) == "second" and flaky.reads == 3


def test_a_clock_moved_back_does_not_hold_the_retry_off(
    aws: Any, flaky: FlakySecretsManager, now: list[float]
) -> None:
    arn = _arn(aws)
    _rotate(arn, "the-secret")
    flaky.failing = THROTTLED
    assert secrets.secret(arn) is None
    flaky.failing = None
    now[0] -= 86400  # the local stack's POST /_local/clock may move time back
    assert secrets.secret(arn) == "the-secret"


def _user_hash(user_id: str, secret: str) -> str:
    return hmac.new(secret.encode(), user_id.encode(), hashlib.sha256).hexdigest()


def test_one_blip_costs_identity_callers_seconds_not_five_minutes(
    keys: dict[str, str],
    aws: Any,
    flaky: FlakySecretsManager,
    now: list[float],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("IDENTITY_SECRET")  # deployed: the secret comes from IDENTITY_SECRET_ARN
    get_settings.cache_clear()
    assert call("POST", "/v1/users", key=keys["ingest"], body={"user_id": "u-1"}).status == 201
    _rotate(_arn(aws), "identity-secret")
    hashed = _user_hash("u-1", "identity-secret")
    flaky.failing = THROTTLED
    assert call("POST", "/v1/users/u-1/logins", user_hash=hashed).status == 401  # fails closed
    flaky.failing = None
    now[0] += 2
    assert call("POST", "/v1/users/u-1/logins", user_hash=hashed).status == 200
    flaky.failing = THROTTLED  # and a later blip, once the TTL has passed, changes nothing
    now[0] += secrets.TTL_SECONDS
    assert call("POST", "/v1/users/u-1/logins", user_hash=hashed).status == 200
