"""CORS on the three identity routes and only there (API.md, Authentication and roles), through the
authorizer and IngestFunction as API Gateway calls them (tests/support/apigw.call).

A listed origin gets `Access-Control-Allow-Origin: <origin>` and `Vary: Origin` on every answer of
POST …/logins, POST …/events and GET …/messages, errors included, and on their preflights (204);
an origin not listed, and every other route, gets no CORS header; nothing answers `*`.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import pytest
from segmentation.errors import Retryable
from segmentation.http.body import MAX_BODY_BYTES
from segmentation.settings import get_settings
from segmentation.storage import users as user_store

from tests.conftest import TEST_IDENTITY_SECRET
from tests.support.apigw import INGEST, LambdaContext, Reply, call, proxy_event

APP = "https://app.example.com"
OTHER_APP = "http://127.0.0.1:8123"
STRANGER = "https://evil.example.net"
IDENTITY_ROUTES = [
    ("POST", "/v1/users/u-1/logins", None),
    ("POST", "/v1/users/u-1/events", {"event_name": "opened_app"}),
    ("GET", "/v1/users/u-1/messages", None),
]


def user_hash(user_id: str) -> str:
    return hmac.new(TEST_IDENTITY_SECRET.encode(), user_id.encode(), hashlib.sha256).hexdigest()


@pytest.fixture
def origins(keys: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """ALLOWED_ORIGINS lists APP and OTHER_APP (as the template's AllowedOrigins would); user u-1 exists
    and the event name is known (an identity caller may only record names a server key has)."""
    monkeypatch.setenv("ALLOWED_ORIGINS", f"{APP}, {OTHER_APP}")
    get_settings.cache_clear()
    assert call("POST", "/v1/users", key=keys["ingest"], body={"user_id": "u-1"}).status == 201
    named = call("POST", "/v1/users/u-1/events", key=keys["ingest"], body={"event_name": "opened_app"})
    assert named.status in (200, 202), named
    return keys


def from_page(origin: str, method: str, path: str, **kwargs: Any) -> Reply:
    return call(method, path, headers={"Origin": origin}, **kwargs)


def cors_headers(reply: Reply) -> dict[str, str]:
    return {name: value for name, value in reply.headers.items() if name.startswith("access-control-")}


def assert_names_origin(reply: Reply, origin: str) -> None:
    assert reply.headers.get("access-control-allow-origin") == origin, reply
    assert reply.headers.get("vary") == "Origin", reply


@pytest.mark.parametrize(("method", "path", "body"), IDENTITY_ROUTES)
def test_a_listed_origin_reads_each_identity_routes_answer(
    origins: dict[str, str], method: str, path: str, body: Any
) -> None:
    for origin in (APP, OTHER_APP):
        reply = from_page(origin, method, path, user_hash=user_hash("u-1"), body=body)
        assert reply.status in (200, 202), reply
        assert_names_origin(reply, origin)
        assert "access-control-allow-methods" not in reply.headers  # only preflights say what is allowed


@pytest.mark.parametrize(("method", "path", "body"), IDENTITY_ROUTES)
def test_a_preflight_from_a_listed_origin_is_204_allowing_the_route_and_its_headers_by_name(
    origins: dict[str, str], method: str, path: str, body: Any
) -> None:
    reply = call(
        "OPTIONS",
        path,
        headers={
            "Origin": APP,
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": "content-type,x-user-hash",
        },
    )
    assert reply.status == 204 and reply.body == ""
    assert_names_origin(reply, APP)
    assert reply.headers["access-control-allow-methods"] == method
    allowed = {name.strip().lower() for name in reply.headers["access-control-allow-headers"].split(",")}
    assert allowed == {"content-type", "x-user-hash"}
    assert int(reply.headers["access-control-max-age"]) > 0


@pytest.mark.parametrize(("method", "path", "body"), IDENTITY_ROUTES)
def test_a_bad_hash_is_the_401_of_api_md_with_the_cors_headers(
    origins: dict[str, str], method: str, path: str, body: Any
) -> None:
    for bad in (user_hash("u-2"), "00" * 32, "not-hex"):
        reply = from_page(APP, method, path, user_hash=bad, body=body)
        assert reply.status == 401 and reply.error_code == "unauthorized", reply
        assert reply.body["error"]["message"]
        assert reply.headers["www-authenticate"] == "Bearer"
        assert_names_origin(reply, APP)
    stored = user_store.get("u-1")
    assert stored is not None and stored["session_count"] == 0


def test_no_credentials_and_a_bad_key_are_401_with_the_cors_headers_too(origins: dict[str, str]) -> None:
    assert_names_origin(from_page(APP, "POST", "/v1/users/u-1/logins"), APP)
    reply = from_page(APP, "POST", "/v1/users/u-1/logins", key="sk_not_a_key_at_all")
    assert reply.status == 401
    assert_names_origin(reply, APP)


def test_the_refused_401_is_the_same_without_an_origin_and_comes_before_the_body(
    origins: dict[str, str],
) -> None:
    plain = call("POST", "/v1/users/u-1/logins", user_hash="00" * 32)
    assert plain.status == 401 and plain.error_code == "unauthorized"
    assert plain.headers["www-authenticate"] == "Bearer"
    assert cors_headers(plain) == {}
    oversized = call(
        "POST", "/v1/users/u-1/events", user_hash="00" * 32, raw_body="[" + " " * MAX_BODY_BYTES + "]"
    )
    assert oversized.status == 401
    malformed = call("POST", "/v1/users/u-1/events", raw_body="{not json")
    assert malformed.status == 401


def test_errors_of_the_function_carry_the_cors_headers(
    origins: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    good = user_hash("u-404")
    missing = from_page(APP, "POST", "/v1/users/u-404/logins", user_hash=good)
    assert missing.status == 404
    assert_names_origin(missing, APP)
    invalid = from_page(
        APP, "POST", "/v1/users/u-1/events", user_hash=user_hash("u-1"), body={"event_name": ""}
    )
    assert invalid.status == 422
    assert_names_origin(invalid, APP)
    malformed = from_page(APP, "POST", "/v1/users/u-1/logins", user_hash=user_hash("u-1"), raw_body="{oops")
    assert malformed.status == 400
    assert_names_origin(malformed, APP)
    too_big = from_page(
        APP,
        "POST",
        "/v1/users/u-1/events",
        user_hash=user_hash("u-1"),
        raw_body="[" + " " * MAX_BODY_BYTES + "]",
    )
    assert too_big.status == 413
    assert_names_origin(too_big, APP)

    def busy(*args: Any, **kwargs: Any) -> None:
        raise Retryable("throttled")

    monkeypatch.setattr(user_store, "record_login", busy)
    throttled = from_page(APP, "POST", "/v1/users/u-1/logins", user_hash=user_hash("u-1"))
    assert throttled.status == 429
    assert_names_origin(throttled, APP)

    def crash(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(user_store, "record_login", crash)
    failed = from_page(APP, "POST", "/v1/users/u-1/logins", user_hash=user_hash("u-1"))
    assert failed.status == 500
    assert_names_origin(failed, APP)


@pytest.mark.parametrize(("method", "path", "body"), IDENTITY_ROUTES)
def test_an_origin_not_listed_gets_no_cors_header(
    origins: dict[str, str], method: str, path: str, body: Any
) -> None:
    for origin in (STRANGER, APP + ".evil.net", "null", APP.upper()):
        answered = from_page(origin, method, path, user_hash=user_hash("u-1"), body=body)
        refused = from_page(origin, method, path, user_hash="00" * 32, body=body)
        preflight = call("OPTIONS", path, headers={"Origin": origin, "Access-Control-Request-Method": method})
        assert answered.status in (200, 202) and refused.status == 401 and preflight.status == 204
        for reply in (answered, refused, preflight):
            assert cors_headers(reply) == {}, (origin, reply)


def test_with_no_allowed_origins_no_route_answers_cors(keys: dict[str, str]) -> None:
    assert get_settings().allowed_origins == ()
    assert call("POST", "/v1/users", key=keys["ingest"], body={"user_id": "u-1"}).status == 201
    login = from_page(APP, "POST", "/v1/users/u-1/logins", user_hash=user_hash("u-1"))
    preflight = call("OPTIONS", "/v1/users/u-1/logins", headers={"Origin": APP})
    assert login.status == 200 and preflight.status == 204
    assert cors_headers(login) == cors_headers(preflight) == {}


def test_other_routes_answer_no_cors_even_to_a_listed_origin(origins: dict[str, str]) -> None:
    keys = origins
    replies = [
        from_page(APP, "GET", "/v1/users/u-1", key=keys["read"]),
        from_page(APP, "GET", "/v1/users/u-1/events", key=keys["read"]),  # its POST is an identity route
        from_page(APP, "POST", "/v1/users/u-1/logins", key=keys["ingest"]),
        from_page(APP, "GET", "/v1/segments", key=keys["admin"]),
        from_page(APP, "GET", "/v1/api_keys", key=keys["admin"]),
        from_page(APP, "GET", "/v1/segments", key="sk_not_a_key_at_all"),
    ]
    assert [reply.status for reply in replies] == [200, 200, 200, 200, 200, 401]
    # A key sent from a page is still answered with CORS on an identity route (the origin is listed).
    assert_names_origin(replies[2], APP)
    for reply in replies[:2] + replies[3:]:
        assert cors_headers(reply) == {} and "vary" not in reply.headers, reply


def test_the_authorizer_lets_only_the_identity_routes_refusals_through_to_the_function(
    origins: dict[str, str],
) -> None:
    from functions.authorizer.app import lambda_handler

    arn = "arn:aws:execute-api:us-east-1:123456789012:abc123/prod/POST/v1/users/u-1/logins"
    event: dict[str, Any] = proxy_event("POST", "/v1/users/u-1/logins", {"X-User-Hash": "00" * 32}, None)
    event.update(type="REQUEST", methodArn=arn)
    result = lambda_handler(event, LambdaContext())
    [statement] = result["policyDocument"]["Statement"]
    assert statement == {"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": [arn]}
    assert result["context"] == {"refused": True}  # no role: the function's role check answers 401

    for method, path in (("GET", "/v1/users/u-1"), ("GET", "/v1/users/u-1/events"), ("GET", "/v1/segments")):
        event = proxy_event(method, path, {"Authorization": "Bearer sk_not_a_key_at_all"}, None)
        event.update(type="REQUEST", methodArn=f"arn:aws:execute-api:us-east-1:1:abc/prod/{method}{path}")
        with pytest.raises(Exception, match=r"^Unauthorized$"):
            lambda_handler(event, LambdaContext())


def test_the_function_never_serves_a_refused_request(origins: dict[str, str]) -> None:
    """Defence in depth: an authorizer context without a role is a 401 on every guarded route."""
    from functions.ingest.app import lambda_handler

    for method, path in (
        ("POST", "/v1/users/u-1/logins"),
        ("GET", "/v1/users/u-1"),
        ("DELETE", "/v1/users/u-1"),
    ):
        event = proxy_event(method, path, {"Origin": APP}, None)
        event["requestContext"]["authorizer"] = {"refused": "true", "principalId": "refused"}
        assert lambda_handler(event, LambdaContext())["statusCode"] == 401, path
    assert user_store.get("u-1") is not None


def test_a_preflight_reaches_no_route_but_its_own(origins: dict[str, str]) -> None:
    """OPTIONS is routed only for the three identity paths; elsewhere the function knows none."""
    reply = call("OPTIONS", "/v1/users/u-1", headers={"Origin": APP}, function=INGEST)
    assert reply.status == 405 and cors_headers(reply) == {}
