"""template.yaml answers CORS only on the identity routes, through IngestFunction, never with `*`."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.packaging.sam_template import REPO, functions, load_template, resources_of_type


def _api_events() -> list[tuple[str, dict[str, Any]]]:
    return [
        (logical_id, event["Properties"])
        for logical_id, props in functions().items()
        for event in (props.get("Events") or {}).values()
        if event["Type"] == "Api"
    ]


def test_no_api_and_no_gateway_response_offers_cors_of_its_own() -> None:
    apis = resources_of_type("AWS::Serverless::Api")
    assert apis
    assert "Cors" not in ((load_template().get("Globals") or {}).get("Api") or {})
    for logical_id, api in apis.items():
        props = api["Properties"]
        assert "Cors" not in props, logical_id
        for kind, response in (props.get("GatewayResponses") or {}).items():
            headers = ((response.get("ResponseParameters") or {}).get("Headers")) or {}
            assert not [name for name in headers if name.lower().startswith("access-control-")], kind
            assert "'*'" not in headers.values(), kind
    text = (REPO / "template.yaml").read_text(encoding="utf-8")
    assert "access-control-" not in text.lower()


def test_preflights_are_routed_exactly_for_the_identity_routes_without_an_authorizer() -> None:
    events = _api_events()
    identity = {
        props["Path"]
        for _, props in events
        if (props.get("Auth") or {}).get("Authorizer") == "KeyOrUserHashAuthorizer"
    }
    assert identity == {
        "/v1/users/{user_id}/logins",
        "/v1/users/{user_id}/events",
        "/v1/users/{user_id}/messages",
    }
    preflights = [
        (function_id, props) for function_id, props in events if props["Method"].lower() == "options"
    ]
    assert {props["Path"] for _, props in preflights} == identity
    assert len(preflights) == len(identity)
    for function_id, props in preflights:
        assert function_id == "IngestFunction"
        assert props["Auth"]["Authorizer"] == "NONE"


@pytest.mark.parametrize(
    ("value", "accepted"),
    [
        ("", True),
        ("https://app.example.com", True),
        ("https://app.example.com, http://localhost:8080", True),
        ("*", False),
        ("https://app.example.com,*", False),
        ("https://*.example.com", False),
        ("https://app.example.com/login", False),
        ("app.example.com", False),
    ],
)
def test_allowed_origins_is_a_parameter_given_to_every_function(value: str, accepted: bool) -> None:
    template = load_template()
    parameter = template["Parameters"]["AllowedOrigins"]
    assert parameter["Default"] == ""
    assert template["Globals"]["Function"]["Environment"]["Variables"]["ALLOWED_ORIGINS"] == {
        "Ref": "AllowedOrigins"
    }
    assert bool(re.fullmatch(parameter["AllowedPattern"], value)) is accepted
