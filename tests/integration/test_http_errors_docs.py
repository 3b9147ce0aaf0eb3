"""The OpenAPI document and the docs page: public, and covering every route of both functions."""

from __future__ import annotations

from tests.support.apigw import call


def test_the_openapi_document_lists_every_route(aws: object) -> None:
    reply = call("GET", "/v1/openapi.json")
    assert reply.status == 200
    paths = reply.body["paths"]
    for path, method in [
        ("/v1/users", "post"),
        ("/v1/users/{user_id}", "get"),
        ("/v1/users/{user_id}", "delete"),
        ("/v1/users/{user_id}/logins", "post"),
        ("/v1/users/{user_id}/messages", "get"),
        ("/v1/companies", "post"),
        ("/v1/companies/{company_id}", "get"),
        ("/v1/api_keys", "post"),
        ("/v1/api_keys/{key_id}", "delete"),
        ("/v1/users/search", "post"),
        ("/v1/segments", "post"),
        ("/v1/messages", "post"),
    ]:
        assert method in paths.get(path, {}), f"{method.upper()} {path} is not documented"
    assert "UserUpsert" in reply.body["components"]["schemas"]
    assert reply.body["servers"] == [{"url": "/prod"}]


def test_every_route_of_the_template_is_documented_with_its_error_statuses(aws: object) -> None:
    from pathlib import Path

    from infra.local.template import load_template

    template = load_template(Path(__file__).resolve().parents[2] / "template.yaml")
    paths = call("GET", "/v1/openapi.json").body["paths"]
    public = {"/v1/openapi.json", "/v1/docs"}
    # CORS preflights (OPTIONS) are the browsers' protocol, not operations of the API: left out.
    routes = [
        (r.path, r.method.lower())
        for r in template.routes
        if r.path.startswith("/v1/") and r.path not in public and r.method != "OPTIONS"
    ]
    assert routes
    assert not [path for path, operations in paths.items() if "options" in operations]
    for path, method in routes:
        operation = paths.get(path, {}).get(method)
        assert operation is not None, f"{method.upper()} {path} is not documented"
        assert {"400", "401", "403", "422", "429"} <= set(operation["responses"]), (path, method)


def test_the_docs_page_is_swagger_ui(aws: object) -> None:
    reply = call("GET", "/v1/docs")
    assert reply.status == 200 and "swagger" in reply.body.lower()


def test_every_link_leads_to_a_documented_operation(aws: object) -> None:
    document = call("GET", "/v1/openapi.json").body
    operations = {op["operationId"]: op for ops in document["paths"].values() for op in ops.values()}
    links = [
        (name, link)
        for ops in document["paths"].values()
        for op in ops.values()
        for response in op["responses"].values()
        for name, link in (response.get("links") or {}).items()
    ]
    assert len(links) >= 17
    for name, link in links:
        target = operations.get(link["operationId"])
        assert target is not None, name
        declared = {p["name"] for p in target.get("parameters", []) if p["in"] == "path"}
        assert set(link["parameters"]) <= declared, name
