"""Each API key's usage key (its rate limit): made with the key, named by the authorizer, deleted
on revocation; the first admin key and keys stored before usage keys existed get one on first use.

Under moto (the `aws` fixture provisions the template's usage plans). Faults are injected by
wrapping the storage functions; API Gateway's calls are counted by wrapping botocore.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from botocore.client import BaseClient
from botocore.exceptions import ClientError
from segmentation import errors
from segmentation.auth import access
from segmentation.auth.keys import hash_key, identity_hash, key_id_for_hash
from segmentation.settings import get_settings
from segmentation.storage import api_keys as key_store
from segmentation.storage import aws as storage_aws
from segmentation.storage import usage_keys

from tests.conftest import TEST_IDENTITY_SECRET
from tests.support.apigw import LambdaContext, call, proxy_event

METHOD_ARN = "arn:aws:execute-api:us-east-1:123456789012:abc123/prod/GET/v1/segments"


def authorize(headers: dict[str, str], path: str = "/v1/segments", method: str = "GET") -> dict[str, Any]:
    from functions.authorizer.app import lambda_handler

    event: dict[str, Any] = proxy_event(method, path, headers, None)
    event.update(type="REQUEST", methodArn=METHOD_ARN)
    result: dict[str, Any] = lambda_handler(event, LambdaContext())
    return result


def api_keys_named(name: str) -> list[dict[str, Any]]:
    items = storage_aws.client("apigateway").get_api_keys(includeValues=True, limit=500)["items"]
    return [key for key in items if key.get("name") == name]


def plan_names(usage_key_id: str) -> list[str]:
    plans = storage_aws.client("apigateway").get_usage_plans(keyId=usage_key_id)["items"]
    return [plan["name"] for plan in plans]


@pytest.fixture
def apigateway_calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The names of the API Gateway operations called while the test runs."""
    seen: list[str] = []
    original = BaseClient._make_api_call  # type: ignore[attr-defined]

    def recorded(self: Any, operation: str, params: dict[str, Any]) -> Any:
        if self.meta.service_model.service_name == "apigateway":
            seen.append(operation)
        return original(self, operation, params)

    monkeypatch.setattr(BaseClient, "_make_api_call", recorded)
    yield seen


def test_a_new_key_gets_its_own_usage_key_in_its_roles_plan(keys: dict[str, str]) -> None:
    created = call("POST", "/v1/api_keys", key=keys["admin"], body={"role": "write"}).body
    record = key_store.find_by_hash(hash_key(created["key"]))
    assert record is not None and record.usage_key and record.usage_key_id
    assert record.usage_key.startswith(usage_keys.VALUE_PREFIX) and created["key"] not in record.usage_key
    [made] = api_keys_named(created["id"])
    assert (made["id"], made["value"], made["enabled"]) == (record.usage_key_id, record.usage_key, True)
    assert plan_names(record.usage_key_id) == [get_settings().usage_plan_prefix + "write"]


def test_the_authorizer_names_the_keys_usage_key_without_calling_api_gateway(
    keys: dict[str, str], apigateway_calls: list[str]
) -> None:
    record = key_store.find_by_hash(hash_key(keys["read"]))
    assert record is not None and record.usage_key
    apigateway_calls.clear()
    result = authorize({"Authorization": f"Bearer {keys['read']}"})
    assert result["usageIdentifierKey"] == record.usage_key
    assert apigateway_calls == []


def test_identity_verified_callers_are_named_the_shared_identity_usage_key(keys: dict[str, str]) -> None:
    assert call("POST", "/v1/users", key=keys["ingest"], body={"user_id": "u-1"}).status == 201
    result = authorize(
        {"X-User-Hash": identity_hash(TEST_IDENTITY_SECRET, "u-1")}, "/v1/users/u-1/logins", "POST"
    )
    shared = get_settings().identity_usage_key
    assert shared and result["usageIdentifierKey"] == shared
    [provisioned] = [
        k
        for k in storage_aws.client("apigateway").get_api_keys(includeValues=True)["items"]
        if k["value"] == shared
    ]
    assert plan_names(provisioned["id"]) == [get_settings().usage_plan_prefix + "identity"]


def test_the_first_admin_key_gets_a_usage_key_on_its_first_use_and_only_then(
    keys: dict[str, str], aws: Any
) -> None:
    secret = storage_aws.client("secretsmanager").get_secret_value(
        SecretId=aws.secret_arns["FirstAdminKeySecret"]
    )["SecretString"]
    first = authorize({"Authorization": f"Bearer {secret}"})
    again = authorize({"Authorization": f"Bearer {secret}"})
    key_id = key_id_for_hash(hash_key(secret))
    [made] = api_keys_named(key_id)
    assert first["usageIdentifierKey"] == again["usageIdentifierKey"] == made["value"]
    assert plan_names(made["id"]) == [get_settings().usage_plan_prefix + "admin"]


def test_a_key_stored_before_usage_keys_existed_gets_one_once(keys: dict[str, str]) -> None:
    raw = "sk_stored_before_usage_keys_0123456789"
    key_store.put_key(hash_key(raw), "key_old", "ingest", "old", 1_700_000_000)  # no usage key
    answers = [authorize({"Authorization": f"Bearer {raw}"})["usageIdentifierKey"] for _ in range(2)]
    [made] = api_keys_named("key_old")
    assert answers == [made["value"]] * 2
    record = key_store.find_by_hash(hash_key(raw))
    assert record is not None and record.usage_key_id == made["id"]


def test_of_two_racing_first_uses_one_usage_key_is_kept_and_the_other_deleted(keys: dict[str, str]) -> None:
    raw = "sk_raced_first_use_0123456789abcdef"
    key_hash = hash_key(raw)
    stale = key_store.put_key(key_hash, "key_raced", "read", "raced", 1_700_000_000)
    # Both requests read the record before either stored a usage key.
    winner = access._attach_usage_key(key_hash, stale)
    loser = access._attach_usage_key(key_hash, stale)
    assert loser.usage_key == winner.usage_key
    assert [made["value"] for made in api_keys_named("key_raced")] == [winner.usage_key]


def test_a_record_that_cannot_be_stored_leaves_no_usage_key_behind(
    keys: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    before = {key["id"] for key in storage_aws.client("apigateway").get_api_keys()["items"]}

    def throttled(*args: Any, **kwargs: Any) -> Any:
        raise errors.Retryable("DynamoDB: ThrottlingException")

    monkeypatch.setattr(key_store, "put_key", throttled)
    reply = call("POST", "/v1/api_keys", key=keys["admin"], body={"role": "read"})
    assert reply.status == 429 and reply.error_code == "throttled"
    after = {key["id"] for key in storage_aws.client("apigateway").get_api_keys()["items"]}
    assert after == before


def test_a_usage_key_that_cannot_join_its_plan_is_deleted_and_the_call_can_be_retried(
    keys: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    apigateway = storage_aws.client("apigateway")
    before = {key["id"] for key in apigateway.get_api_keys()["items"]}

    def throttled(**arguments: Any) -> Any:
        raise ClientError(
            {"Error": {"Code": "TooManyRequestsException", "Message": "slow down"}}, "CreateUsagePlanKey"
        )

    monkeypatch.setattr(apigateway, "create_usage_plan_key", throttled)
    reply = call("POST", "/v1/api_keys", key=keys["admin"], body={"role": "read"})
    assert reply.status == 429
    assert {key["id"] for key in apigateway.get_api_keys()["items"]} == before
    monkeypatch.undo()
    assert call("POST", "/v1/api_keys", key=keys["admin"], body={"role": "read"}).status == 201


def test_revoking_deletes_the_usage_key(keys: dict[str, str]) -> None:
    created = call("POST", "/v1/api_keys", key=keys["admin"], body={"role": "read"}).body
    assert len(api_keys_named(created["id"])) == 1
    assert call("DELETE", f"/v1/api_keys/{created['id']}", key=keys["admin"]).status == 204
    assert api_keys_named(created["id"]) == []
    assert call("GET", "/v1/segments", key=created["key"]).status == 401


def test_a_revocation_whose_usage_key_delete_failed_is_finished_by_revoking_again(
    keys: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    created = call("POST", "/v1/api_keys", key=keys["admin"], body={"role": "read"}).body
    real_delete = usage_keys.delete

    def throttled(usage_key_id: str) -> None:
        raise errors.Retryable("API Gateway: TooManyRequestsException")

    monkeypatch.setattr(usage_keys, "delete", throttled)
    first = call("DELETE", f"/v1/api_keys/{created['id']}", key=keys["admin"])
    assert first.status == 429
    assert call("GET", "/v1/segments", key=created["key"]).status == 401  # revoked all the same
    assert len(api_keys_named(created["id"])) == 1
    monkeypatch.setattr(usage_keys, "delete", real_delete)
    assert call("DELETE", f"/v1/api_keys/{created['id']}", key=keys["admin"]).status == 204
    assert api_keys_named(created["id"]) == []
    assert call("DELETE", f"/v1/api_keys/{created['id']}", key=keys["admin"]).status == 204  # gone: fine


def test_api_gateway_throttling_is_retryable_and_other_refusals_are_not(aws: Any) -> None:
    def refusing(code: str) -> Any:
        def operation(**arguments: Any) -> Any:
            raise ClientError({"Error": {"Code": code, "Message": code}}, "CreateApiKey")

        return operation

    with pytest.raises(errors.Retryable):
        usage_keys._call(refusing("TooManyRequestsException"))
    with pytest.raises(ClientError):
        usage_keys._call(refusing("BadRequestException"))
