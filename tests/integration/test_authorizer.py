"""AuthorizerFunction with API keys, the bootstrap admin secret and identity hashes."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import pytest
from segmentation.settings import get_settings
from segmentation.storage import api_keys as key_store
from segmentation.storage import aws as storage_aws
from segmentation.storage import users as user_store

from tests.conftest import TEST_IDENTITY_SECRET
from tests.support.apigw import call


def user_hash(user_id: str, secret: str = TEST_IDENTITY_SECRET) -> str:
    return hmac.new(secret.encode(), user_id.encode(), hashlib.sha256).hexdigest()


@pytest.fixture
def user(keys: dict[str, str]) -> str:
    assert call("POST", "/v1/users", key=keys["ingest"], body={"user_id": "u-1"}).status == 201
    return "u-1"


def test_no_key_is_401(keys: dict[str, str], user: str) -> None:
    assert call("GET", "/v1/users/u-1").status == 401


def test_an_unknown_key_is_401(keys: dict[str, str], user: str) -> None:
    assert call("GET", "/v1/users/u-1", key="sk_not_a_key").status == 401


def test_a_non_bearer_authorization_is_401(keys: dict[str, str], user: str) -> None:
    reply = call("GET", "/v1/users/u-1", headers={"Authorization": f"Basic {keys['read']}"})
    assert reply.status == 401


def test_a_revoked_key_is_401_at_once(keys: dict[str, str], user: str) -> None:
    created = call("POST", "/v1/api_keys", key=keys["admin"], body={"role": "read", "name": "soon gone"})
    assert call("GET", "/v1/users/u-1", key=created.body["key"]).status == 200
    assert call("DELETE", f"/v1/api_keys/{created.body['id']}", key=keys["admin"]).status == 204
    assert call("GET", "/v1/users/u-1", key=created.body["key"]).status == 401


def test_the_policy_allows_the_whole_api_with_the_callers_context(keys: dict[str, str]) -> None:
    from functions.authorizer.app import lambda_handler
    from tests.support.apigw import LambdaContext, proxy_event

    event: dict[str, Any] = proxy_event(
        "GET", "/v1/users/u-1", {"authorization": f"Bearer {keys['write']}"}, None
    )
    event.update(
        type="REQUEST", methodArn="arn:aws:execute-api:us-east-1:123456789012:abc123/prod/GET/v1/users/u-1"
    )
    result = lambda_handler(event, LambdaContext())
    statement = result["policyDocument"]["Statement"][0]
    assert statement["Effect"] == "Allow"
    assert statement["Resource"] == ["arn:aws:execute-api:us-east-1:123456789012:abc123/prod/*/*"]
    assert result["context"]["role"] == "write" and result["context"]["key_id"]


def test_an_identity_policy_names_the_user_and_holds_only_strings_in_its_context(
    keys: dict[str, str], user: str
) -> None:
    from functions.authorizer.app import lambda_handler
    from tests.support.apigw import LambdaContext, proxy_event

    # Header names as the client spelled them, and a path with a colon in the user id.
    user_id = "org:42"
    event: dict[str, Any] = proxy_event(
        "POST", f"/v1/users/{user_id}/logins", {"X-User-Hash": user_hash(user_id)}, None
    )
    event.update(
        type="REQUEST",
        pathParameters={"user_id": user_id},
        methodArn=f"arn:aws:execute-api:eu-west-1:210987654321:xyz789/live/POST/v1/users/{user_id}/logins",
    )
    result = lambda_handler(event, LambdaContext())
    assert result["principalId"] == f"user:{user_id}"
    [statement] = result["policyDocument"]["Statement"]
    assert statement["Resource"] == ["arn:aws:execute-api:eu-west-1:210987654321:xyz789/live/*/*"]
    # API Gateway answers 500 to a context value that is not a string, number or boolean.
    assert result["context"] == {"role": "identity", "user_id": user_id}


def test_the_first_admin_key_comes_from_secrets_manager(keys: dict[str, str], aws: Any) -> None:
    arn = aws.secret_arns["FirstAdminKeySecret"]
    secret = storage_aws.client("secretsmanager").get_secret_value(SecretId=arn)["SecretString"]
    assert get_settings().admin_key_secret_arn == arn
    reply = call("POST", "/v1/api_keys", key=secret, body={"role": "ingest"})
    assert reply.status == 201
    assert call("POST", "/v1/api_keys", key=secret + "x", body={"role": "ingest"}).status == 401


def test_a_right_identity_hash_opens_the_two_routes_of_its_user(keys: dict[str, str], user: str) -> None:
    login = call("POST", "/v1/users/u-1/logins", user_hash=user_hash("u-1"))
    assert login.status == 200 and login.body["user"]["session_count"] == 1
    assert call("GET", "/v1/users/u-1/messages", user_hash=user_hash("u-1")).status == 200


def test_a_wrong_identity_hash_is_401(keys: dict[str, str], user: str) -> None:
    assert call("POST", "/v1/users/u-1/logins", user_hash=user_hash("u-1", "other secret")).status == 401
    assert call("POST", "/v1/users/u-1/logins", user_hash="00" * 32).status == 401
    stored = user_store.get("u-1")
    assert stored is not None and stored["session_count"] == 0


def test_a_hash_of_another_user_is_401(keys: dict[str, str], user: str) -> None:
    assert call("POST", "/v1/users/u-1/logins", user_hash=user_hash("u-2")).status == 401
    assert call("GET", "/v1/users/u-1/messages", user_hash=user_hash("u-2")).status == 401


def test_a_hash_opens_no_other_route(keys: dict[str, str], user: str) -> None:
    good = user_hash("u-1")
    assert call("GET", "/v1/users/u-1", user_hash=good).status == 401
    assert call("DELETE", "/v1/users/u-1", user_hash=good).status == 401
    assert call("POST", "/v1/users", user_hash=good, body={"user_id": "u-1"}).status == 401
    assert user_store.get("u-1") is not None


def test_the_api_function_refuses_an_identity_on_another_users_route(keys: dict[str, str], user: str) -> None:
    """Defence in depth: even with an identity context for u-2, u-1's routes answer 403."""
    from functions.ingest.app import lambda_handler
    from tests.support.apigw import LambdaContext, proxy_event

    event = proxy_event("POST", "/v1/users/u-1/logins", {}, None)
    event["requestContext"]["authorizer"] = {"role": "identity", "user_id": "u-2", "key_id": ""}
    assert lambda_handler(event, LambdaContext())["statusCode"] == 403


def test_the_identity_secret_is_read_from_secrets_manager_when_not_set(
    keys: dict[str, str], user: str, aws: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("IDENTITY_SECRET")
    get_settings.cache_clear()
    secret = storage_aws.client("secretsmanager").get_secret_value(SecretId=aws.secret_arns["IdentitySecret"])
    assert (
        call("POST", "/v1/users/u-1/logins", user_hash=user_hash("u-1", secret["SecretString"])).status == 200
    )
    assert call("POST", "/v1/users/u-1/logins", user_hash=user_hash("u-1")).status == 401


def test_a_bad_key_is_refused_even_with_a_good_hash(keys: dict[str, str], user: str) -> None:
    reply = call("POST", "/v1/users/u-1/logins", key="sk_wrong", user_hash=user_hash("u-1"))
    assert reply.status == 401


def test_key_lookups_are_by_hash_only(keys: dict[str, str]) -> None:
    created = call("POST", "/v1/api_keys", key=keys["admin"], body={"role": "read"})
    raw = created.body["key"]
    items = storage_aws.table(get_settings().api_keys_table).scan()["Items"]
    assert all(raw not in str(item) for item in items)
    assert key_store.find_by_hash(hashlib.sha256(raw.encode()).hexdigest()) is not None


def test_the_first_admin_key_is_an_ordinary_revocable_key_once_used(keys: dict[str, str], aws: Any) -> None:
    secret = storage_aws.client("secretsmanager").get_secret_value(
        SecretId=aws.secret_arns["FirstAdminKeySecret"]
    )["SecretString"]
    assert call("GET", "/v1/api_keys", key=secret).status == 200
    listed = call("GET", "/v1/api_keys", key=keys["admin"]).body["data"]
    first = [k for k in listed if k["name"] == "first admin key"]
    assert len(first) == 1 and first[0]["role"] == "admin" and first[0]["revoked"] is False
    assert call("DELETE", f"/v1/api_keys/{first[0]['id']}", key=keys["admin"]).status == 204
    assert call("GET", "/v1/api_keys", key=secret).status == 401  # revoked stays revoked
    assert [
        k["revoked"]
        for k in call("GET", "/v1/api_keys", key=keys["admin"]).body["data"]
        if k["id"] == first[0]["id"]
    ] == [True]


@pytest.mark.parametrize(
    "headers",
    [
        {"X-User-Hash": "é" * 64},
        {"X-User-Hash": "zz" * 32},
        {"X-User-Hash": "00" * 31},
        {"X-User-Hash": "\x00" * 64},
        {"Authorization": "Bearer sk_é_not_ascii_key"},
        {"Authorization": "Bearer short"},
        {"Authorization": "Bearer " + "k" * 600},
        {"Authorization": "Bearer sk_a b"},
    ],
)
def test_malformed_credentials_are_refused_without_raising(
    keys: dict[str, str], user: str, headers: dict[str, str]
) -> None:
    assert call("POST", "/v1/users/u-1/logins", headers=headers).status == 401


def test_a_user_id_that_is_not_unicode_gets_a_401_not_a_crash(keys: dict[str, str]) -> None:
    from segmentation.auth.access import authenticate_request

    headers = {"x-user-hash": user_hash("x")}
    path = "/v1/users/\ud800/logins"
    assert authenticate_request("POST", path, headers, {"user_id": "\ud800"}) is None


def test_a_missing_identity_secret_fails_closed(
    keys: dict[str, str], user: str, aws: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from segmentation.storage import secrets

    monkeypatch.delenv("IDENTITY_SECRET")
    monkeypatch.setenv("IDENTITY_SECRET_ARN", aws.secret_arns["IdentitySecret"] + "-gone")
    get_settings.cache_clear()
    secrets.clear_cache()
    assert call("POST", "/v1/users/u-1/logins", user_hash=user_hash("u-1")).status == 401
    assert call("GET", "/v1/users/u-1", key=keys["read"]).status == 200  # keys do not need it


def test_secrets_are_read_again_after_their_ttl(
    keys: dict[str, str], user: str, aws: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from segmentation import clock
    from segmentation.storage import secrets

    monkeypatch.delenv("IDENTITY_SECRET")
    get_settings.cache_clear()
    arn = aws.secret_arns["IdentitySecret"]
    old = storage_aws.client("secretsmanager").get_secret_value(SecretId=arn)["SecretString"]
    assert call("POST", "/v1/users/u-1/logins", user_hash=user_hash("u-1", old)).status == 200
    storage_aws.client("secretsmanager").put_secret_value(SecretId=arn, SecretString="rotated-secret")
    assert call("POST", "/v1/users/u-1/logins", user_hash=user_hash("u-1", old)).status == 200  # cached
    monkeypatch.setattr(clock, "_offset_seconds", secrets.TTL_SECONDS + 1)
    assert call("POST", "/v1/users/u-1/logins", user_hash=user_hash("u-1", old)).status == 401
    assert call("POST", "/v1/users/u-1/logins", user_hash=user_hash("u-1", "rotated-secret")).status == 200
